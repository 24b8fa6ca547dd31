/**
 * TCP segments (RFC 9293 section 3.1) and the options MSS (RFC 9293 section 3.2), window scale and timestamps
 * (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
 */
import { get16, get32, place, requireRoom, set16, set32, slice } from './_bytes.ts';
import type { IpAddress } from './address.ts';
import { upperLayerChecksum } from './checksum.ts';
import { type ChecksumOptions, IpProtocol } from './ip-protocol.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** Length of a TCP header without options. */
export const TCP_MIN_HEADER_LEN = 20;

/** TCP control bits. */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const OFF_FLAGS = 12;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

/** A zero-copy view of a TCP segment. Accessors never throw; call {@link TcpPacket.check} first. */
export class TcpPacket {
  constructor(readonly buffer: Uint8Array) {}
  /** Null when the header (with options, per the data offset) fits the buffer. */
  check(): WireError | null {
    const b = this.buffer;
    if (b.length < TCP_MIN_HEADER_LEN) return truncated('tcp', TCP_MIN_HEADER_LEN, b.length);
    const hl = this.headerLength;
    if (hl < TCP_MIN_HEADER_LEN) return { code: 'EXO_ERR_WIRE_MALFORMED', message: `tcp: data offset ${hl / 4}` };
    return b.length < hl ? truncated('tcp header', hl, b.length) : null;
  }
  get srcPort(): number {
    return get16(this.buffer, SRC_PORT);
  }
  get dstPort(): number {
    return get16(this.buffer, DST_PORT);
  }
  get seq(): number {
    return get32(this.buffer, SEQ);
  }
  get ack(): number {
    return get32(this.buffer, ACK);
  }
  /** Header length in bytes (data offset * 4). */
  get headerLength(): number {
    return ((this.buffer[OFF_FLAGS] ?? 0) >> 4) * 4;
  }
  /** The eight control bits (CWR..FIN); see {@link TcpFlags}. */
  get flags(): number {
    return this.buffer[OFF_FLAGS + 1] ?? 0;
  }
  get window(): number {
    return get16(this.buffer, WINDOW);
  }
  get checksum(): number {
    return get16(this.buffer, CHECKSUM);
  }
  get urgent(): number {
    return get16(this.buffer, URGENT);
  }
  /** Raw option bytes. */
  get options(): Uint8Array {
    return slice(this.buffer, TCP_MIN_HEADER_LEN, this.headerLength);
  }
  get payload(): Uint8Array {
    return slice(this.buffer, this.headerLength);
  }
  /** True when the checksum over the whole buffer and the pseudo-header verifies. */
  verifyChecksum(src: IpAddress, dst: IpAddress): boolean {
    return upperLayerChecksum(src, dst, IpProtocol.TCP, this.buffer) === 0;
  }
}

/** A SACK block: the left edge and the sequence number just past the right edge (RFC 2018 section 3). */
export interface SackBlock {
  readonly left: number;
  readonly right: number;
}

/** The options this package understands. Unknown options are skipped on parse and never emitted. */
export interface TcpOptions {
  /** Maximum segment size (SYN only). */
  readonly mss?: number;
  /** Window scale shift, 0..14 (SYN only; RFC 7323 section 2.3). */
  readonly windowScale?: number;
  readonly sackPermitted?: boolean;
  readonly sackBlocks?: readonly SackBlock[];
  /** TSval and TSecr (RFC 7323 section 3). */
  readonly timestamp?: { readonly value: number; readonly echo: number };
}

/** The validated plain representation of a TCP segment. */
export interface TcpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  /** Acknowledgement number; meaningful when the ACK flag is set (emit writes it as given). */
  readonly ack: number;
  readonly flags: number;
  /** The raw 16-bit window field (not scaled). */
  readonly window: number;
  readonly urgent: number;
  readonly options: TcpOptions;
  readonly payload: Uint8Array;
}

/** Walks option bytes into {@link TcpOptions}. Never throws; malformed lengths are reported. */
export function parseTcpOptions(opts: Uint8Array): WireResult<TcpOptions> {
  const out: {
    mss?: number;
    windowScale?: number;
    sackPermitted?: boolean;
    sackBlocks?: SackBlock[];
    timestamp?: { value: number; echo: number };
  } = {};
  let i = 0;
  while (i < opts.length) {
    const kind = opts[i];
    if (kind === TcpOptionKind.END) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    const len = opts[i + 1];
    if (len === undefined || len < 2 || i + len > opts.length) {
      return fail('EXO_ERR_WIRE_MALFORMED', `tcp: option ${kind} at ${i} has a bad length`);
    }
    const bad = (): WireResult<TcpOptions> => fail('EXO_ERR_WIRE_MALFORMED', `tcp: option ${kind} has length ${len}`);
    switch (kind) {
      case TcpOptionKind.MSS:
        if (len !== 4) return bad();
        out.mss = get16(opts, i + 2);
        break;
      case TcpOptionKind.WINDOW_SCALE:
        if (len !== 3) return bad();
        // RFC 7323 section 2.3: a shift above 14 is treated as 14.
        out.windowScale = Math.min(opts[i + 2], 14);
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (len !== 2) return bad();
        out.sackPermitted = true;
        break;
      case TcpOptionKind.SACK: {
        if ((len - 2) % 8 !== 0 || len < 10) return bad();
        const blocks: SackBlock[] = [];
        for (let j = i + 2; j < i + len; j += 8) blocks.push({ left: get32(opts, j), right: get32(opts, j + 4) });
        out.sackBlocks = blocks;
        break;
      }
      case TcpOptionKind.TIMESTAMP:
        if (len !== 10) return bad();
        out.timestamp = { value: get32(opts, i + 2), echo: get32(opts, i + 6) };
        break;
      default:
        break; // unknown: skipped (RFC 9293 section 3.2 requires receivers to ignore them)
    }
    i += len;
  }
  return ok(out);
}

/** Bytes the options occupy when emitted, padded to a multiple of 4. */
export function tcpOptionsLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.windowScale !== undefined) n += 4; // NOP + 3
  if (o.sackPermitted) n += 4; // NOP NOP + 2 (or paired with timestamps; kept simple and aligned)
  if (o.timestamp) n += 12; // NOP NOP + 10
  if (o.sackBlocks && o.sackBlocks.length > 0) n += 4 + 8 * o.sackBlocks.length; // NOP NOP + 2 + 8n
  return n;
}

/** Writes options at `off` in the aligned layout Linux uses; returns the bytes written. */
function emitTcpOptions(o: TcpOptions, b: Uint8Array, off: number): number {
  const start = off;
  if (o.mss !== undefined) {
    b[off++] = TcpOptionKind.MSS;
    b[off++] = 4;
    set16(b, off, o.mss);
    off += 2;
  }
  if (o.windowScale !== undefined) {
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.WINDOW_SCALE;
    b[off++] = 3;
    b[off++] = o.windowScale;
  }
  if (o.sackPermitted) {
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.SACK_PERMITTED;
    b[off++] = 2;
  }
  if (o.timestamp) {
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.TIMESTAMP;
    b[off++] = 10;
    set32(b, off, o.timestamp.value);
    set32(b, off + 4, o.timestamp.echo);
    off += 8;
  }
  if (o.sackBlocks && o.sackBlocks.length > 0) {
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.NOP;
    b[off++] = TcpOptionKind.SACK;
    b[off++] = 2 + 8 * o.sackBlocks.length;
    for (const blk of o.sackBlocks) {
      set32(b, off, blk.left);
      set32(b, off + 4, blk.right);
      off += 8;
    }
  }
  return off - start;
}

/** Parses a segment carried between `src` and `dst`, verifying the checksum unless turned off. Never throws. */
export function parseTcp(
  buf: Uint8Array,
  src: IpAddress,
  dst: IpAddress,
  opts: ChecksumOptions = {},
): WireResult<TcpRepr> {
  const p = new TcpPacket(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  if (opts.verifyChecksum !== false && !p.verifyChecksum(src, dst)) {
    return fail('EXO_ERR_WIRE_CHECKSUM', `tcp: checksum 0x${p.checksum.toString(16)} does not verify`);
  }
  const o = parseTcpOptions(p.options);
  if (!o.ok) return o;
  return ok({
    srcPort: p.srcPort,
    dstPort: p.dstPort,
    seq: p.seq,
    ack: p.ack,
    flags: p.flags,
    window: p.window,
    urgent: p.urgent,
    options: o.value,
    payload: p.payload,
  });
}

/** Header length of a representation (20 + options). */
export function tcpHeaderLength(repr: Pick<TcpRepr, 'options'>): number {
  return TCP_MIN_HEADER_LEN + tcpOptionsLength(repr.options);
}

/** Total bytes {@link emitTcp} writes. */
export function tcpBufferLength(repr: TcpRepr): number {
  return tcpHeaderLength(repr) + repr.payload.length;
}

/**
 * Writes header, options, payload and checksum at `offset` for a segment from `src` to `dst`; returns the
 * bytes written. Throws RangeError on a too-small buffer or options over 40 bytes.
 */
export function emitTcp(repr: TcpRepr, buf: Uint8Array, offset: number, src: IpAddress, dst: IpAddress): number {
  const hl = tcpHeaderLength(repr);
  if (hl > 60) throw new RangeError(`emitTcp: expected options of at most 40 bytes, got ${hl - 20}`);
  const total = hl + repr.payload.length;
  requireRoom(buf, offset, total, 'emitTcp');
  set16(buf, offset + SRC_PORT, repr.srcPort);
  set16(buf, offset + DST_PORT, repr.dstPort);
  set32(buf, offset + SEQ, repr.seq);
  set32(buf, offset + ACK, repr.ack);
  buf[offset + OFF_FLAGS] = (hl / 4) << 4;
  buf[offset + OFF_FLAGS + 1] = repr.flags & 0xff;
  set16(buf, offset + WINDOW, repr.window);
  set16(buf, offset + CHECKSUM, 0);
  set16(buf, offset + URGENT, repr.urgent);
  emitTcpOptions(repr.options, buf, offset + TCP_MIN_HEADER_LEN);
  place(buf, offset + hl, repr.payload);
  set16(buf, offset + CHECKSUM, upperLayerChecksum(src, dst, IpProtocol.TCP, buf, offset, offset + total));
  return total;
}

/** Sequence length of a segment: payload plus one each for SYN and FIN (RFC 9293 section 3.4). */
export function tcpSegmentLength(repr: Pick<TcpRepr, 'flags' | 'payload'>): number {
  return repr.payload.length + (repr.flags & TcpFlags.SYN ? 1 : 0) + (repr.flags & TcpFlags.FIN ? 1 : 0);
}

/** Formats control bits like tcpdump ("S.", "F.", "R", "P."). */
export function formatTcpFlags(flags: number): string {
  let s = '';
  if (flags & TcpFlags.SYN) s += 'S';
  if (flags & TcpFlags.FIN) s += 'F';
  if (flags & TcpFlags.RST) s += 'R';
  if (flags & TcpFlags.PSH) s += 'P';
  if (flags & TcpFlags.ACK) s += '.';
  return s || 'none';
}
