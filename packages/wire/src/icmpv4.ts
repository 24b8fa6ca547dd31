/**
 * ICMP for IPv4 (RFC 792): echo, and the error messages that quote the offending packet's header.
 */
import { get16, get32, place, requireRoom, set16, set32, slice } from './_bytes.ts';
import { internetChecksum } from './checksum.ts';
import type { ChecksumOptions } from './ip-protocol.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** Length of the ICMP header (type, code, checksum and the 4-byte rest-of-header). */
export const ICMP_HEADER_LEN = 8;

/** ICMPv4 message types (RFC 792). */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Destination-unreachable codes (RFC 792, RFC 1191 for code 4). */
export const Icmpv4Unreachable = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4,
  ADMIN_PROHIBITED: 13,
} as const;

const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const REST = 4;

/**
 * A zero-copy view of an ICMP (v4 or v6: the first 8 bytes share a layout) message. Accessors never throw; call
 * {@link IcmpPacket.check} first.
 */
export class IcmpPacket {
  constructor(readonly buffer: Uint8Array) {}
  check(): WireError | null {
    return this.buffer.length < ICMP_HEADER_LEN ? truncated('icmp', ICMP_HEADER_LEN, this.buffer.length) : null;
  }
  get type(): number {
    return this.buffer[TYPE] ?? 0;
  }
  get code(): number {
    return this.buffer[CODE] ?? 0;
  }
  get checksum(): number {
    return get16(this.buffer, CHECKSUM);
  }
  /** The 4-byte rest-of-header as an unsigned number. */
  get rest(): number {
    return get32(this.buffer, REST);
  }
  /** Echo identifier (first half of rest-of-header). */
  get echoIdent(): number {
    return get16(this.buffer, REST);
  }
  /** Echo sequence number (second half). */
  get echoSeq(): number {
    return get16(this.buffer, REST + 2);
  }
  /** Everything after the 8-byte header. */
  get data(): Uint8Array {
    return slice(this.buffer, ICMP_HEADER_LEN);
  }
}

/** The validated plain representation of an ICMPv4 message. */
export type Icmpv4Repr =
  | {
      readonly kind: 'echo-request' | 'echo-reply';
      readonly ident: number;
      readonly seq: number;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: 'dest-unreachable';
      readonly code: number;
      /** For code 4 (fragmentation needed), the next-hop MTU (RFC 1191 section 4); 0 otherwise. */
      readonly nextHopMtu: number;
      /** The offending packet's IP header and at least 8 bytes of its payload. */
      readonly quoted: Uint8Array;
    }
  | { readonly kind: 'time-exceeded'; readonly code: number; readonly quoted: Uint8Array }
  | { readonly kind: 'parameter-problem'; readonly code: number; readonly pointer: number; readonly quoted: Uint8Array }
  | {
      readonly kind: 'other';
      readonly type: number;
      readonly code: number;
      readonly rest: number;
      readonly data: Uint8Array;
    };

/** Parses an ICMPv4 message (the checksum covers the message alone: RFC 792). Never throws. */
export function parseIcmpv4(buf: Uint8Array, opts: ChecksumOptions = {}): WireResult<Icmpv4Repr> {
  const p = new IcmpPacket(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  if (opts.verifyChecksum !== false && internetChecksum(buf) !== 0) {
    return fail('EXO_ERR_WIRE_CHECKSUM', `icmp: checksum 0x${p.checksum.toString(16)} does not verify`);
  }
  switch (p.type) {
    case Icmpv4Type.ECHO_REQUEST:
    case Icmpv4Type.ECHO_REPLY:
      if (p.code !== 0) break;
      return ok({
        kind: p.type === Icmpv4Type.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
        ident: p.echoIdent,
        seq: p.echoSeq,
        data: p.data,
      });
    case Icmpv4Type.DEST_UNREACHABLE:
      return ok({
        kind: 'dest-unreachable',
        code: p.code,
        nextHopMtu: p.code === Icmpv4Unreachable.FRAG_NEEDED ? p.rest & 0xffff : 0,
        quoted: p.data,
      });
    case Icmpv4Type.TIME_EXCEEDED:
      return ok({ kind: 'time-exceeded', code: p.code, quoted: p.data });
    case Icmpv4Type.PARAMETER_PROBLEM:
      return ok({ kind: 'parameter-problem', code: p.code, pointer: p.rest >>> 24, quoted: p.data });
  }
  return ok({ kind: 'other', type: p.type, code: p.code, rest: p.rest, data: p.data });
}

function bodyOf(repr: Icmpv4Repr): Uint8Array {
  switch (repr.kind) {
    case 'echo-request':
    case 'echo-reply':
    case 'other':
      return repr.data;
    default:
      return repr.quoted;
  }
}

/** Total bytes {@link emitIcmpv4} writes. */
export function icmpv4BufferLength(repr: Icmpv4Repr): number {
  return ICMP_HEADER_LEN + bodyOf(repr).length;
}

/** Writes the message with its checksum at `offset`; returns the bytes written. */
export function emitIcmpv4(repr: Icmpv4Repr, buf: Uint8Array, offset = 0): number {
  const body = bodyOf(repr);
  const total = ICMP_HEADER_LEN + body.length;
  requireRoom(buf, offset, total, 'emitIcmpv4');
  let type: number;
  let code = 0;
  let rest = 0;
  switch (repr.kind) {
    case 'echo-request':
    case 'echo-reply':
      type = repr.kind === 'echo-request' ? Icmpv4Type.ECHO_REQUEST : Icmpv4Type.ECHO_REPLY;
      rest = ((repr.ident & 0xffff) << 16) | (repr.seq & 0xffff);
      break;
    case 'dest-unreachable':
      type = Icmpv4Type.DEST_UNREACHABLE;
      code = repr.code;
      rest = repr.nextHopMtu & 0xffff;
      break;
    case 'time-exceeded':
      type = Icmpv4Type.TIME_EXCEEDED;
      code = repr.code;
      break;
    case 'parameter-problem':
      type = Icmpv4Type.PARAMETER_PROBLEM;
      code = repr.code;
      rest = (repr.pointer & 0xff) << 24;
      break;
    case 'other':
      type = repr.type;
      code = repr.code;
      rest = repr.rest;
      break;
  }
  buf[offset + TYPE] = type;
  buf[offset + CODE] = code;
  set16(buf, offset + CHECKSUM, 0);
  set32(buf, offset + REST, rest >>> 0);
  place(buf, offset + ICMP_HEADER_LEN, body);
  set16(buf, offset + CHECKSUM, internetChecksum(buf, offset, offset + total));
  return total;
}

/**
 * The part of an offending IPv4 packet an error message quotes: its header plus up to `maxBytes` in total.
 * RFC 792 asks for the header and 8 bytes; RFC 1812 section 4.3.2.3 allows up to 576 bytes in the whole
 * error datagram, which Linux does, hence the default of 548 (576 - 20 - 8).
 */
export function quoteIpv4Packet(packet: Uint8Array, maxBytes = 548): Uint8Array {
  return packet.subarray(0, Math.min(packet.length, maxBytes));
}
