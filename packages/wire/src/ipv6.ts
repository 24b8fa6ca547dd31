/**
 * IPv6 (RFC 8200): header view, validated representation, and a walk over extension headers.
 */
import { get16, get32, place, requireRoom, set16, set32, slice } from './_bytes.ts';
import { formatIpv6, type Ipv6Address } from './address.ts';
import { IpProtocol } from './ip-protocol.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** Length of the fixed IPv6 header. */
export const IPV6_HEADER_LEN = 40;

const VER_TC_FLOW = 0;
const PAYLOAD_LEN = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC = 8;
const DST = 24;

/** A zero-copy view of an IPv6 header. Accessors never throw; call {@link Ipv6Packet.check} first. */
export class Ipv6Packet {
  constructor(readonly buffer: Uint8Array) {}
  /** Null when the header and the payload length fit the buffer and the version is 6. */
  check(): WireError | null {
    const b = this.buffer;
    if (b.length < IPV6_HEADER_LEN) return truncated('ipv6', IPV6_HEADER_LEN, b.length);
    if (this.version !== 6) return { code: 'EXO_ERR_WIRE_MALFORMED', message: `ipv6: version ${this.version}` };
    const need = IPV6_HEADER_LEN + this.payloadLength;
    return b.length < need ? truncated('ipv6 packet', need, b.length) : null;
  }
  get version(): number {
    return (this.buffer[VER_TC_FLOW] ?? 0) >> 4;
  }
  get trafficClass(): number {
    return (get16(this.buffer, VER_TC_FLOW) >> 4) & 0xff;
  }
  get flowLabel(): number {
    return get32(this.buffer, VER_TC_FLOW) & 0xfffff;
  }
  get payloadLength(): number {
    return get16(this.buffer, PAYLOAD_LEN);
  }
  get nextHeader(): number {
    return this.buffer[NEXT_HEADER] ?? 0;
  }
  get hopLimit(): number {
    return this.buffer[HOP_LIMIT] ?? 0;
  }
  set hopLimit(v: number) {
    this.buffer[HOP_LIMIT] = v;
  }
  get src(): Ipv6Address {
    return slice(this.buffer, SRC, SRC + 16);
  }
  get dst(): Ipv6Address {
    return slice(this.buffer, DST, DST + 16);
  }
  /** Payload bounded by the payload length (extension headers included). */
  get payload(): Uint8Array {
    return slice(this.buffer, IPV6_HEADER_LEN, IPV6_HEADER_LEN + this.payloadLength);
  }
}

/** The validated plain representation of an IPv6 packet; `payload` starts with any extension headers. */
export interface Ipv6Repr {
  readonly src: Ipv6Address;
  readonly dst: Ipv6Address;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly payload: Uint8Array;
}

/** Defaults for building a packet: hop limit 64, traffic class and flow label 0. */
export function ipv6Repr(
  fields: Pick<Ipv6Repr, 'src' | 'dst' | 'nextHeader' | 'payload'> & Partial<Ipv6Repr>,
): Ipv6Repr {
  return { hopLimit: 64, trafficClass: 0, flowLabel: 0, ...fields };
}

/** Parses an IPv6 packet (the payload length of 0 with a jumbogram is not supported). Never throws. */
export function parseIpv6(buf: Uint8Array): WireResult<Ipv6Repr> {
  const p = new Ipv6Packet(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  return ok({
    src: p.src,
    dst: p.dst,
    nextHeader: p.nextHeader,
    hopLimit: p.hopLimit,
    trafficClass: p.trafficClass,
    flowLabel: p.flowLabel,
    payload: p.payload,
  });
}

/** Total bytes {@link emitIpv6} writes. */
export function ipv6BufferLength(repr: Ipv6Repr): number {
  return IPV6_HEADER_LEN + repr.payload.length;
}

/** Writes header and payload at `offset`; returns the bytes written. Throws RangeError on a too-small buffer. */
export function emitIpv6(repr: Ipv6Repr, buf: Uint8Array, offset = 0): number {
  const total = IPV6_HEADER_LEN + repr.payload.length;
  if (repr.payload.length > 0xffff) throw new RangeError('emitIpv6: expected a payload of at most 65535 bytes');
  requireRoom(buf, offset, total, 'emitIpv6');
  set32(buf, offset + VER_TC_FLOW, ((6 << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & 0xfffff)) >>> 0);
  set16(buf, offset + PAYLOAD_LEN, repr.payload.length);
  buf[offset + NEXT_HEADER] = repr.nextHeader;
  buf[offset + HOP_LIMIT] = repr.hopLimit;
  buf.set(repr.src.subarray(0, 16), offset + SRC);
  buf.set(repr.dst.subarray(0, 16), offset + DST);
  place(buf, offset + IPV6_HEADER_LEN, repr.payload);
  return total;
}

/** The contents of a Fragment extension header (RFC 8200 section 4.5). */
export interface Ipv6FragmentInfo {
  /** Offset of this fragment's data in bytes (a multiple of 8). */
  readonly offset: number;
  readonly moreFragments: boolean;
  readonly ident: number;
}

/** One extension header met by {@link walkIpv6Extensions}. */
export interface Ipv6ExtensionHeader {
  readonly type: number;
  /** Offset of the header inside the IPv6 payload. */
  readonly offset: number;
  /** Length of the whole header in bytes. */
  readonly length: number;
}

/** The result of walking the extension header chain. */
export interface Ipv6ExtensionWalk {
  /** The upper-layer protocol (e.g. 6 TCP, 17 UDP, 58 ICMPv6, 59 no next header). */
  readonly protocol: number;
  /** Offset of the upper-layer data in the IPv6 payload. */
  readonly offset: number;
  readonly headers: readonly Ipv6ExtensionHeader[];
  /** Present when a Fragment header was met. */
  readonly fragment?: Ipv6FragmentInfo;
}

/** Most extension headers walked before giving up (hostile chains can be long). */
export const MAX_IPV6_EXTENSIONS = 8;

/** True for the extension headers the walk steps over (RFC 8200 section 4; AH per RFC 4302). */
export function isIpv6ExtensionHeader(type: number): boolean {
  return (
    type === IpProtocol.HOP_BY_HOP ||
    type === IpProtocol.IPV6_ROUTING ||
    type === IpProtocol.IPV6_FRAGMENT ||
    type === IpProtocol.IPV6_DEST_OPTS ||
    type === IpProtocol.AH
  );
}

/**
 * Walks the extension header chain starting at `nextHeader` over the IPv6 `payload` to the upper layer.
 * Hop-by-Hop must come first (RFC 8200 section 4.1). Never throws.
 */
export function walkIpv6Extensions(nextHeader: number, payload: Uint8Array): WireResult<Ipv6ExtensionWalk> {
  const headers: Ipv6ExtensionHeader[] = [];
  let type = nextHeader;
  let off = 0;
  let fragment: Ipv6FragmentInfo | undefined;
  while (isIpv6ExtensionHeader(type)) {
    if (headers.length === MAX_IPV6_EXTENSIONS) return fail('EXO_ERR_WIRE_UNSUPPORTED', 'ipv6: too many extensions');
    if (type === IpProtocol.HOP_BY_HOP && headers.length > 0) {
      return fail('EXO_ERR_WIRE_MALFORMED', 'ipv6: hop-by-hop options header not first');
    }
    if (payload.length < off + 8) return { ok: false, error: truncated('ipv6 extension', off + 8, payload.length) };
    let len: number;
    if (type === IpProtocol.IPV6_FRAGMENT) {
      len = 8;
      const fo = get16(payload, off + 2);
      fragment = { offset: fo & 0xfff8, moreFragments: (fo & 1) === 1, ident: get32(payload, off + 4) };
    } else if (type === IpProtocol.AH) {
      len = (payload[off + 1] + 2) * 4; // RFC 4302 section 2.2: in 4-octet units, minus 2
    } else {
      len = (payload[off + 1] + 1) * 8; // RFC 8200 section 4.3: in 8-octet units, not counting the first 8
    }
    if (payload.length < off + len) return { ok: false, error: truncated('ipv6 extension', off + len, payload.length) };
    headers.push({ type, offset: off, length: len });
    type = payload[off];
    off += len;
    // A non-first fragment's upper-layer header is not in this packet: stop at the fragment header.
    if (fragment && fragment.offset !== 0) break;
  }
  return ok(fragment ? { protocol: type, offset: off, headers, fragment } : { protocol: type, offset: off, headers });
}

/** An extension header to emit: options-style (hop-by-hop, destination, routing) or a fragment header. */
export type Ipv6ExtensionRepr =
  | { readonly type: 0 | 43 | 60; readonly nextHeader: number; readonly data: Uint8Array }
  | { readonly type: 44; readonly nextHeader: number; readonly fragment: Ipv6FragmentInfo };

/** Bytes an extension header occupies (options-style data padded to 8-byte units with a PadN/Pad1 tail). */
export function ipv6ExtensionLength(ext: Ipv6ExtensionRepr): number {
  return ext.type === 44 ? 8 : (2 + ext.data.length + 7) & ~7;
}

/**
 * Writes one extension header at `offset`; returns its length. Options-style data are padded with PadN/Pad1
 * options (RFC 8200 section 4.2). Throws RangeError on a too-small buffer.
 */
export function emitIpv6Extension(ext: Ipv6ExtensionRepr, buf: Uint8Array, offset = 0): number {
  const len = ipv6ExtensionLength(ext);
  requireRoom(buf, offset, len, 'emitIpv6Extension');
  buf[offset] = ext.nextHeader;
  if (ext.type === 44) {
    buf[offset + 1] = 0;
    set16(buf, offset + 2, (ext.fragment.offset & 0xfff8) | (ext.fragment.moreFragments ? 1 : 0));
    set32(buf, offset + 4, ext.fragment.ident);
    return len;
  }
  buf[offset + 1] = len / 8 - 1;
  buf.set(ext.data, offset + 2);
  const pad = len - 2 - ext.data.length;
  const at = offset + 2 + ext.data.length;
  if (pad === 1) buf[at] = 0;
  else if (pad > 1) {
    buf[at] = 1;
    buf[at + 1] = pad - 2;
    buf.fill(0, at + 2, at + pad);
  }
  return len;
}

/** A one-line description for logs. */
export function describeIpv6(repr: Ipv6Repr): string {
  return `${formatIpv6(repr.src)} > ${formatIpv6(repr.dst)} next ${repr.nextHeader} hlim ${repr.hopLimit}`;
}
