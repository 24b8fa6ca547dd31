/**
 * IPv4 (RFC 791): header view, validated representation with options, and the header checksum.
 */
import { get16, get32, place, requireRoom, set16, set32, slice } from './_bytes.ts';
import { formatIpv4, type Ipv4Address } from './address.ts';
import { internetChecksum } from './checksum.ts';
import type { ChecksumOptions } from './ip-protocol.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** Length of an IPv4 header without options. */
export const IPV4_MIN_HEADER_LEN = 20;
/** Longest IPv4 header (IHL 15). */
export const IPV4_MAX_HEADER_LEN = 60;

const VER_IHL = 0;
const DSCP_ECN = 1;
const TOTAL_LEN = 2;
const IDENT = 4;
const FLAGS_FRAG = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;

/** A zero-copy view of an IPv4 header. Accessors never throw; call {@link Ipv4Packet.check} first. */
export class Ipv4Packet {
  constructor(readonly buffer: Uint8Array) {}

  /** Null when version, IHL and total length are consistent with the buffer, else what is wrong. */
  check(): WireError | null {
    const b = this.buffer;
    if (b.length < IPV4_MIN_HEADER_LEN) return truncated('ipv4', IPV4_MIN_HEADER_LEN, b.length);
    if (this.version !== 4) return { code: 'EXO_ERR_WIRE_MALFORMED', message: `ipv4: version ${this.version}` };
    const hl = this.headerLength;
    if (hl < IPV4_MIN_HEADER_LEN) return { code: 'EXO_ERR_WIRE_MALFORMED', message: `ipv4: header length ${hl}` };
    if (b.length < hl) return truncated('ipv4 header', hl, b.length);
    const tl = this.totalLength;
    if (tl < hl) return { code: 'EXO_ERR_WIRE_MALFORMED', message: `ipv4: total length ${tl} below header ${hl}` };
    if (b.length < tl) return truncated('ipv4 packet', tl, b.length);
    return null;
  }
  get version(): number {
    return (this.buffer[VER_IHL] ?? 0) >> 4;
  }
  /** Header length in bytes (IHL * 4). */
  get headerLength(): number {
    return ((this.buffer[VER_IHL] ?? 0) & 0x0f) * 4;
  }
  get dscp(): number {
    return (this.buffer[DSCP_ECN] ?? 0) >> 2;
  }
  get ecn(): number {
    return (this.buffer[DSCP_ECN] ?? 0) & 3;
  }
  get totalLength(): number {
    return get16(this.buffer, TOTAL_LEN);
  }
  get ident(): number {
    return get16(this.buffer, IDENT);
  }
  get dontFragment(): boolean {
    return ((this.buffer[FLAGS_FRAG] ?? 0) & 0x40) !== 0;
  }
  get moreFragments(): boolean {
    return ((this.buffer[FLAGS_FRAG] ?? 0) & 0x20) !== 0;
  }
  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (get16(this.buffer, FLAGS_FRAG) & 0x1fff) * 8;
  }
  get ttl(): number {
    return this.buffer[TTL] ?? 0;
  }
  set ttl(v: number) {
    this.buffer[TTL] = v;
  }
  get protocol(): number {
    return this.buffer[PROTOCOL] ?? 0;
  }
  get checksum(): number {
    return get16(this.buffer, CHECKSUM);
  }
  get src(): Ipv4Address {
    return get32(this.buffer, SRC);
  }
  set src(v: Ipv4Address) {
    set32(this.buffer, SRC, v);
  }
  get dst(): Ipv4Address {
    return get32(this.buffer, DST);
  }
  set dst(v: Ipv4Address) {
    set32(this.buffer, DST, v);
  }
  /** Raw option bytes (between byte 20 and the header length). */
  get options(): Uint8Array {
    return slice(this.buffer, IPV4_MIN_HEADER_LEN, this.headerLength);
  }
  /** The payload as bounded by the total length (Ethernet padding excluded). */
  get payload(): Uint8Array {
    return slice(this.buffer, this.headerLength, this.totalLength);
  }
  /** True when the header checksum verifies (RFC 791 section 3.1: the sum over the header is all ones). */
  verifyChecksum(): boolean {
    return internetChecksum(this.buffer, 0, this.headerLength) === 0;
  }
  /** Recomputes the header checksum in place (after editing the TTL, say). */
  fillChecksum(): void {
    set16(this.buffer, CHECKSUM, 0);
    set16(this.buffer, CHECKSUM, internetChecksum(this.buffer, 0, this.headerLength));
  }
}

/** The validated plain representation of an IPv4 packet. */
export interface Ipv4Repr {
  readonly src: Ipv4Address;
  readonly dst: Ipv4Address;
  readonly protocol: number;
  readonly ttl: number;
  /** Differentiated services code point (6 bits). */
  readonly dscp: number;
  /** Explicit congestion notification (2 bits). */
  readonly ecn: number;
  readonly ident: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** Fragment offset in bytes; a multiple of 8. */
  readonly fragmentOffset: number;
  /** Raw option bytes; emit pads them with End-of-Option-List to a multiple of 4 (at most 40). */
  readonly options: Uint8Array;
  readonly payload: Uint8Array;
}

/** Defaults for building a packet: TTL 64, no options, not fragmented, DF set as Linux does for TCP. */
export function ipv4Repr(fields: Pick<Ipv4Repr, 'src' | 'dst' | 'protocol' | 'payload'> & Partial<Ipv4Repr>): Ipv4Repr {
  return {
    ttl: 64,
    dscp: 0,
    ecn: 0,
    ident: 0,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    options: new Uint8Array(0),
    ...fields,
  };
}

/** Parses and validates an IPv4 packet (checksum verified unless turned off). Never throws. */
export function parseIpv4(buf: Uint8Array, opts: ChecksumOptions = {}): WireResult<Ipv4Repr> {
  const p = new Ipv4Packet(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  if (opts.verifyChecksum !== false && !p.verifyChecksum()) {
    return fail('EXO_ERR_WIRE_CHECKSUM', `ipv4: header checksum 0x${p.checksum.toString(16)} does not verify`);
  }
  const optErr = validateIpv4Options(p.options);
  if (optErr) return { ok: false, error: optErr };
  return ok({
    src: p.src,
    dst: p.dst,
    protocol: p.protocol,
    ttl: p.ttl,
    dscp: p.dscp,
    ecn: p.ecn,
    ident: p.ident,
    dontFragment: p.dontFragment,
    moreFragments: p.moreFragments,
    fragmentOffset: p.fragmentOffset,
    options: p.options,
    payload: p.payload,
  });
}

/** Header length a representation emits (options padded to 4 bytes). */
export function ipv4HeaderLength(repr: Pick<Ipv4Repr, 'options'>): number {
  return IPV4_MIN_HEADER_LEN + ((repr.options.length + 3) & ~3);
}

/** Total bytes {@link emitIpv4} writes. */
export function ipv4BufferLength(repr: Ipv4Repr): number {
  return ipv4HeaderLength(repr) + repr.payload.length;
}

/**
 * Writes header (with checksum) and payload at `offset`; returns the bytes written. Throws RangeError on a
 * too-small buffer, options over 40 bytes, a packet over 65535 bytes or a fragment offset not a multiple of 8.
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, offset = 0): number {
  const hl = ipv4HeaderLength(repr);
  const total = hl + repr.payload.length;
  if (hl > IPV4_MAX_HEADER_LEN) throw new RangeError(`emitIpv4: expected options of at most 40 bytes`);
  if (total > 0xffff) throw new RangeError(`emitIpv4: expected at most 65535 bytes, got ${total}`);
  if (repr.fragmentOffset % 8 !== 0 || repr.fragmentOffset > 0xfff8) {
    throw new RangeError(`emitIpv4: fragment offset ${repr.fragmentOffset} is not a multiple of 8 below 65536`);
  }
  requireRoom(buf, offset, total, 'emitIpv4');
  const h = buf.subarray(offset, offset + hl);
  h[VER_IHL] = 0x40 | (hl >> 2);
  h[DSCP_ECN] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 3);
  set16(h, TOTAL_LEN, total);
  set16(h, IDENT, repr.ident);
  set16(
    h,
    FLAGS_FRAG,
    (repr.dontFragment ? 0x4000 : 0) | (repr.moreFragments ? 0x2000 : 0) | (repr.fragmentOffset >> 3),
  );
  h[TTL] = repr.ttl;
  h[PROTOCOL] = repr.protocol;
  set32(h, SRC, repr.src);
  set32(h, DST, repr.dst);
  h.fill(0, IPV4_MIN_HEADER_LEN);
  h.set(repr.options, IPV4_MIN_HEADER_LEN);
  set16(h, CHECKSUM, 0);
  set16(h, CHECKSUM, internetChecksum(h, 0, hl));
  place(buf, offset + hl, repr.payload);
  return total;
}

/** One IPv4 option (RFC 791 section 3.1): its type byte and its data (without type and length). */
export interface Ipv4Option {
  readonly type: number;
  readonly data: Uint8Array;
}

/** IPv4 option types that are a single byte. */
const IPV4_OPT_EOL = 0;
const IPV4_OPT_NOP = 1;

function validateIpv4Options(opts: Uint8Array): WireError | null {
  const r = parseIpv4Options(opts);
  return r.ok ? null : r.error;
}

/** Walks IPv4 option bytes into a list (NOPs skipped, stops at End of Option List). Never throws. */
export function parseIpv4Options(opts: Uint8Array): WireResult<Ipv4Option[]> {
  const out: Ipv4Option[] = [];
  let i = 0;
  while (i < opts.length) {
    const type = opts[i];
    if (type === IPV4_OPT_EOL) break;
    if (type === IPV4_OPT_NOP) {
      i++;
      continue;
    }
    const len = opts[i + 1];
    if (len === undefined || len < 2 || i + len > opts.length) {
      return fail('EXO_ERR_WIRE_MALFORMED', `ipv4: option ${type} at ${i} has a bad length`);
    }
    out.push({ type, data: opts.subarray(i + 2, i + len) });
    i += len;
  }
  return ok(out);
}

/** Encodes options (each as type, length, data) followed by End-of-Option-List padding to 4 bytes. */
export function emitIpv4Options(options: readonly Ipv4Option[]): Uint8Array {
  const len = options.reduce((n, o) => n + 2 + o.data.length, 0);
  const out = new Uint8Array((len + 3) & ~3);
  let i = 0;
  for (const o of options) {
    out[i] = o.type;
    out[i + 1] = 2 + o.data.length;
    out.set(o.data, i + 2);
    i += 2 + o.data.length;
  }
  return out;
}

/** A one-line description for logs. */
export function describeIpv4(repr: Ipv4Repr): string {
  return `${formatIpv4(repr.src)} > ${formatIpv4(repr.dst)} proto ${repr.protocol} ttl ${repr.ttl} len ${repr.payload.length}`;
}
