/**
 * UDP (RFC 768) with the IPv4 and IPv6 (RFC 8200 section 8.1) pseudo-header checksum.
 */
import { get16, place, requireRoom, set16, slice } from './_bytes.ts';
import type { IpAddress } from './address.ts';
import { upperLayerChecksum } from './checksum.ts';
import { type ChecksumOptions, IpProtocol } from './ip-protocol.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** Length of the UDP header. */
export const UDP_HEADER_LEN = 8;

const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;

/** A zero-copy view of a UDP datagram. Accessors never throw; call {@link UdpPacket.check} first. */
export class UdpPacket {
  constructor(readonly buffer: Uint8Array) {}
  /** Null when the header fits and the length field lies between 8 and the buffer length. */
  check(): WireError | null {
    const b = this.buffer;
    if (b.length < UDP_HEADER_LEN) return truncated('udp', UDP_HEADER_LEN, b.length);
    const len = this.length;
    if (len < UDP_HEADER_LEN) return { code: 'EXO_ERR_WIRE_MALFORMED', message: `udp: length field ${len}` };
    return b.length < len ? truncated('udp datagram', len, b.length) : null;
  }
  get srcPort(): number {
    return get16(this.buffer, SRC_PORT);
  }
  get dstPort(): number {
    return get16(this.buffer, DST_PORT);
  }
  get length(): number {
    return get16(this.buffer, LENGTH);
  }
  get checksum(): number {
    return get16(this.buffer, CHECKSUM);
  }
  /** Payload bounded by the length field. */
  get payload(): Uint8Array {
    return slice(this.buffer, UDP_HEADER_LEN, this.length);
  }
  /**
   * True when the checksum verifies against the pseudo-header. A zero checksum means "none" over IPv4
   * (RFC 768) and is accepted there, but is invalid over IPv6 (RFC 8200 section 8.1).
   */
  verifyChecksum(src: IpAddress, dst: IpAddress): boolean {
    if (this.checksum === 0) return typeof src === 'number';
    return upperLayerChecksum(src, dst, IpProtocol.UDP, this.buffer, 0, this.length) === 0;
  }
}

/** The validated plain representation of a UDP datagram. */
export interface UdpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
}

/** Parses a datagram carried between `src` and `dst`, verifying the checksum unless turned off. Never throws. */
export function parseUdp(
  buf: Uint8Array,
  src: IpAddress,
  dst: IpAddress,
  opts: ChecksumOptions = {},
): WireResult<UdpRepr> {
  const p = new UdpPacket(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  if (opts.verifyChecksum !== false && !p.verifyChecksum(src, dst)) {
    return fail('EXO_ERR_WIRE_CHECKSUM', `udp: checksum 0x${p.checksum.toString(16)} does not verify`);
  }
  return ok({ srcPort: p.srcPort, dstPort: p.dstPort, payload: p.payload });
}

/** Total bytes {@link emitUdp} writes. */
export function udpBufferLength(repr: UdpRepr): number {
  return UDP_HEADER_LEN + repr.payload.length;
}

/**
 * Writes header, payload and checksum at `offset` for a datagram from `src` to `dst`; returns the bytes written.
 * Throws RangeError on a too-small buffer or a datagram over 65535 bytes.
 */
export function emitUdp(repr: UdpRepr, buf: Uint8Array, offset: number, src: IpAddress, dst: IpAddress): number {
  const total = UDP_HEADER_LEN + repr.payload.length;
  if (total > 0xffff) throw new RangeError(`emitUdp: expected at most 65535 bytes, got ${total}`);
  requireRoom(buf, offset, total, 'emitUdp');
  set16(buf, offset + SRC_PORT, repr.srcPort);
  set16(buf, offset + DST_PORT, repr.dstPort);
  set16(buf, offset + LENGTH, total);
  set16(buf, offset + CHECKSUM, 0);
  place(buf, offset + UDP_HEADER_LEN, repr.payload);
  const sum = upperLayerChecksum(src, dst, IpProtocol.UDP, buf, offset, offset + total);
  // A computed 0 is sent as all ones: 0 means "no checksum" (RFC 768).
  set16(buf, offset + CHECKSUM, sum === 0 ? 0xffff : sum);
  return total;
}
