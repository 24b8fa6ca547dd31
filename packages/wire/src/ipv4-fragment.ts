/**
 * IPv4 fragmentation and reassembly (RFC 791 sections 2.3 and 3.2, RFC 815 for the bookkeeping idea).
 * Overlapping fragments drop the whole datagram, as RFC 5722 requires for IPv6 and as is prudent for IPv4
 * (overlaps are used to evade filters: RFC 1858).
 */
import { emitIpv4Options, type Ipv4Option, type Ipv4Repr, ipv4HeaderLength, parseIpv4Options } from './ipv4.ts';

/**
 * Splits a packet into fragments whose emitted size fits `mtu`. The first fragment keeps all options; later ones
 * only options with the "copied" flag (RFC 791 section 3.1). Returns `[repr]` when no split is needed. Throws
 * RangeError when the packet has DF set and does not fit, or `mtu` leaves no room for 8 payload bytes.
 */
export function fragmentIpv4(repr: Ipv4Repr, mtu: number): Ipv4Repr[] {
  if (ipv4HeaderLength(repr) + repr.payload.length <= mtu) return [repr];
  if (repr.dontFragment) throw new RangeError('fragmentIpv4: packet has DF set and exceeds the MTU');
  const opts = parseIpv4Options(repr.options);
  const copied: Ipv4Option[] = opts.ok ? opts.value.filter((o) => (o.type & 0x80) !== 0) : [];
  const laterOptions = emitIpv4Options(copied);
  const out: Ipv4Repr[] = [];
  let pos = 0;
  while (pos < repr.payload.length) {
    const options = pos === 0 ? repr.options : laterOptions;
    const room = (mtu - ipv4HeaderLength({ options })) & ~7;
    if (room <= 0) throw new RangeError(`fragmentIpv4: MTU ${mtu} leaves no room for payload`);
    const end = Math.min(pos + room, repr.payload.length);
    const last = end === repr.payload.length;
    out.push({
      ...repr,
      options,
      fragmentOffset: repr.fragmentOffset + pos,
      moreFragments: last ? repr.moreFragments : true,
      payload: repr.payload.subarray(pos, end),
    });
    pos = end;
  }
  return out;
}

/** Limits of a {@link Ipv4Reassembler}. */
export interface Ipv4ReassemblerOptions {
  /** How long an incomplete datagram is kept, in milliseconds (Linux's ipfrag_time is 30 s). */
  readonly timeoutMs?: number;
  /** Most datagrams in reassembly at once; the oldest is dropped beyond this. */
  readonly maxDatagrams?: number;
}

interface Pending {
  readonly first: number;
  header: Ipv4Repr | null;
  readonly pieces: { off: number; data: Uint8Array }[];
  totalLength: number;
  received: number;
}

/**
 * Collects fragments keyed by (source, destination, protocol, identification) and hands back the whole packet
 * once every byte has arrived. The clock is passed in (`now` in milliseconds) so tests are deterministic.
 */
export class Ipv4Reassembler {
  readonly #timeoutMs: number;
  readonly #max: number;
  readonly #pending = new Map<string, Pending>();

  constructor(opts: Ipv4ReassemblerOptions = {}) {
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#max = opts.maxDatagrams ?? 64;
  }

  /** Number of datagrams waiting for fragments. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Adds a packet. Unfragmented packets are returned as they are; a fragment returns null until the datagram
   * is complete, then the reassembled packet (offset 0, MF clear, the first fragment's header and options).
   */
  push(repr: Ipv4Repr, now: number): Ipv4Repr | null {
    if (!repr.moreFragments && repr.fragmentOffset === 0) return repr;
    this.expire(now);
    const key = `${repr.src}/${repr.dst}/${repr.protocol}/${repr.ident}`;
    let p = this.#pending.get(key);
    if (!p) {
      if (this.#pending.size >= this.#max) {
        const oldest = this.#pending.keys().next().value;
        if (oldest !== undefined) this.#pending.delete(oldest);
      }
      p = { first: now, header: null, pieces: [], totalLength: -1, received: 0 };
      this.#pending.set(key, p);
    }
    const off = repr.fragmentOffset;
    const end = off + repr.payload.length;
    // A non-last fragment must carry a multiple of 8 bytes (RFC 791 section 3.2), and the datagram stays <64 KiB.
    if ((repr.moreFragments && repr.payload.length % 8 !== 0) || end > 0xffff - 20) {
      this.#pending.delete(key);
      return null;
    }
    if (!repr.moreFragments) {
      if (p.totalLength >= 0 && p.totalLength !== end) {
        this.#pending.delete(key);
        return null;
      }
      p.totalLength = end;
    }
    for (const piece of p.pieces) {
      const pend = piece.off + piece.data.length;
      if (off < pend && piece.off < end) {
        if (piece.off === off && pend === end) return null; // exact duplicate: ignore
        this.#pending.delete(key);
        return null;
      }
    }
    if (p.totalLength >= 0 && end > p.totalLength) {
      this.#pending.delete(key);
      return null;
    }
    p.pieces.push({ off, data: repr.payload.slice() });
    p.received += repr.payload.length;
    if (off === 0) p.header = repr;
    if (p.header === null || p.totalLength < 0 || p.received !== p.totalLength) return null;
    this.#pending.delete(key);
    const payload = new Uint8Array(p.totalLength);
    for (const piece of p.pieces) payload.set(piece.data, piece.off);
    return { ...p.header, moreFragments: false, fragmentOffset: 0, payload };
  }

  /** Drops datagrams older than the timeout; returns how many were dropped. */
  expire(now: number): number {
    let n = 0;
    for (const [k, p] of this.#pending) {
      if (now - p.first >= this.#timeoutMs) {
        this.#pending.delete(k);
        n++;
      }
    }
    return n;
  }
}
