/**
 * ICMPv6 (RFC 4443) with echo and error messages, and the Neighbor Discovery messages needed for address
 * resolution (RFC 4861 sections 4.3 and 4.4). The checksum covers the IPv6 pseudo-header.
 */
import { place, requireRoom, set16, set32, slice } from './_bytes.ts';
import type { Ipv6Address, MacAddress } from './address.ts';
import { upperLayerChecksum } from './checksum.ts';
import { ICMP_HEADER_LEN, IcmpPacket } from './icmpv4.ts';
import { type ChecksumOptions, IpProtocol } from './ip-protocol.ts';
import { fail, ok, type WireResult } from './result.ts';

/** ICMPv6 message types. */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

/** NDP option types (RFC 4861 section 4.6). */
const NDP_OPT_SOURCE_LL = 1;
const NDP_OPT_TARGET_LL = 2;

/** The validated plain representation of an ICMPv6 message. */
export type Icmpv6Repr =
  | {
      readonly kind: 'echo-request' | 'echo-reply';
      readonly ident: number;
      readonly seq: number;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'dest-unreachable'; readonly code: number; readonly quoted: Uint8Array }
  | { readonly kind: 'packet-too-big'; readonly mtu: number; readonly quoted: Uint8Array }
  | { readonly kind: 'time-exceeded'; readonly code: number; readonly quoted: Uint8Array }
  | { readonly kind: 'parameter-problem'; readonly code: number; readonly pointer: number; readonly quoted: Uint8Array }
  | {
      readonly kind: 'neighbor-solicitation';
      readonly target: Ipv6Address;
      /** The Source Link-Layer Address option, when present. */
      readonly sourceMac?: MacAddress;
    }
  | {
      readonly kind: 'neighbor-advertisement';
      readonly router: boolean;
      readonly solicited: boolean;
      readonly override: boolean;
      readonly target: Ipv6Address;
      /** The Target Link-Layer Address option, when present. */
      readonly targetMac?: MacAddress;
    }
  | {
      readonly kind: 'other';
      readonly type: number;
      readonly code: number;
      readonly rest: number;
      readonly data: Uint8Array;
    };

function findLinkLayerOption(opts: Uint8Array, wanted: number): WireResult<MacAddress | undefined> {
  let i = 0;
  let found: MacAddress | undefined;
  while (i + 2 <= opts.length) {
    const type = opts[i];
    const len = opts[i + 1] * 8; // in units of 8 octets; 0 is invalid (RFC 4861 section 4.6)
    if (len === 0 || i + len > opts.length) return fail('EXO_ERR_WIRE_MALFORMED', 'ndp: option with bad length');
    if (type === wanted && len >= 8) found = opts.subarray(i + 2, i + 8);
    i += len;
  }
  return ok(found);
}

/**
 * Parses an ICMPv6 message sent from `src` to `dst` (addresses needed for the checksum). Never throws. NDP
 * messages must have code 0 (RFC 4861 section 7.1.1; the hop limit 255 check belongs to the caller).
 */
export function parseIcmpv6(
  buf: Uint8Array,
  src: Ipv6Address,
  dst: Ipv6Address,
  opts: ChecksumOptions = {},
): WireResult<Icmpv6Repr> {
  const p = new IcmpPacket(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  if (opts.verifyChecksum !== false && upperLayerChecksum(src, dst, IpProtocol.ICMPV6, buf) !== 0) {
    return fail('EXO_ERR_WIRE_CHECKSUM', `icmpv6: checksum 0x${p.checksum.toString(16)} does not verify`);
  }
  switch (p.type) {
    case Icmpv6Type.ECHO_REQUEST:
    case Icmpv6Type.ECHO_REPLY:
      if (p.code !== 0) break;
      return ok({
        kind: p.type === Icmpv6Type.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
        ident: p.echoIdent,
        seq: p.echoSeq,
        data: p.data,
      });
    case Icmpv6Type.DEST_UNREACHABLE:
      return ok({ kind: 'dest-unreachable', code: p.code, quoted: p.data });
    case Icmpv6Type.PACKET_TOO_BIG:
      return ok({ kind: 'packet-too-big', mtu: p.rest, quoted: p.data });
    case Icmpv6Type.TIME_EXCEEDED:
      return ok({ kind: 'time-exceeded', code: p.code, quoted: p.data });
    case Icmpv6Type.PARAMETER_PROBLEM:
      return ok({ kind: 'parameter-problem', code: p.code, pointer: p.rest, quoted: p.data });
    case Icmpv6Type.NEIGHBOR_SOLICITATION:
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT: {
      if (p.code !== 0) return fail('EXO_ERR_WIRE_MALFORMED', `ndp: code ${p.code}`);
      if (buf.length < 24) return fail('EXO_ERR_WIRE_TRUNCATED', `ndp: expected at least 24 bytes, got ${buf.length}`);
      const target = slice(buf, 8, 24);
      const solicit = p.type === Icmpv6Type.NEIGHBOR_SOLICITATION;
      const ll = findLinkLayerOption(slice(buf, 24), solicit ? NDP_OPT_SOURCE_LL : NDP_OPT_TARGET_LL);
      if (!ll.ok) return ll;
      if (solicit) {
        return ok(
          ll.value
            ? { kind: 'neighbor-solicitation', target, sourceMac: ll.value }
            : { kind: 'neighbor-solicitation', target },
        );
      }
      const f = buf[4];
      const base = {
        kind: 'neighbor-advertisement' as const,
        router: (f & 0x80) !== 0,
        solicited: (f & 0x40) !== 0,
        override: (f & 0x20) !== 0,
        target,
      };
      return ok(ll.value ? { ...base, targetMac: ll.value } : base);
    }
  }
  return ok({ kind: 'other', type: p.type, code: p.code, rest: p.rest, data: p.data });
}

function bodyLength(repr: Icmpv6Repr): number {
  switch (repr.kind) {
    case 'echo-request':
    case 'echo-reply':
    case 'other':
      return repr.data.length;
    case 'neighbor-solicitation':
      return 16 + (repr.sourceMac ? 8 : 0);
    case 'neighbor-advertisement':
      return 16 + (repr.targetMac ? 8 : 0);
    default:
      return repr.quoted.length;
  }
}

/** Total bytes {@link emitIcmpv6} writes. */
export function icmpv6BufferLength(repr: Icmpv6Repr): number {
  return ICMP_HEADER_LEN + bodyLength(repr);
}

/** Writes the message at `offset` with its checksum over the pseudo-header of `src` and `dst`. */
export function emitIcmpv6(
  repr: Icmpv6Repr,
  buf: Uint8Array,
  offset: number,
  src: Ipv6Address,
  dst: Ipv6Address,
): number {
  const total = icmpv6BufferLength(repr);
  requireRoom(buf, offset, total, 'emitIcmpv6');
  let type: number;
  let code = 0;
  let rest = 0;
  const body = offset + ICMP_HEADER_LEN;
  switch (repr.kind) {
    case 'echo-request':
    case 'echo-reply':
      type = repr.kind === 'echo-request' ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY;
      rest = ((repr.ident & 0xffff) << 16) | (repr.seq & 0xffff);
      place(buf, body, repr.data);
      break;
    case 'dest-unreachable':
    case 'time-exceeded':
      type = repr.kind === 'dest-unreachable' ? Icmpv6Type.DEST_UNREACHABLE : Icmpv6Type.TIME_EXCEEDED;
      code = repr.code;
      place(buf, body, repr.quoted);
      break;
    case 'packet-too-big':
      type = Icmpv6Type.PACKET_TOO_BIG;
      rest = repr.mtu;
      place(buf, body, repr.quoted);
      break;
    case 'parameter-problem':
      type = Icmpv6Type.PARAMETER_PROBLEM;
      code = repr.code;
      rest = repr.pointer;
      place(buf, body, repr.quoted);
      break;
    case 'neighbor-solicitation':
    case 'neighbor-advertisement': {
      const solicit = repr.kind === 'neighbor-solicitation';
      type = solicit ? Icmpv6Type.NEIGHBOR_SOLICITATION : Icmpv6Type.NEIGHBOR_ADVERTISEMENT;
      if (!solicit) rest = ((repr.router ? 0x80 : 0) | (repr.solicited ? 0x40 : 0) | (repr.override ? 0x20 : 0)) << 24;
      buf.set(repr.target.subarray(0, 16), body);
      const mac = solicit ? repr.sourceMac : repr.targetMac;
      if (mac) {
        buf[body + 16] = solicit ? NDP_OPT_SOURCE_LL : NDP_OPT_TARGET_LL;
        buf[body + 17] = 1;
        buf.set(mac.subarray(0, 6), body + 18);
      }
      break;
    }
    case 'other':
      type = repr.type;
      code = repr.code;
      rest = repr.rest;
      place(buf, body, repr.data);
      break;
  }
  buf[offset] = type;
  buf[offset + 1] = code;
  set16(buf, offset + 2, 0);
  set32(buf, offset + 4, rest >>> 0);
  set16(buf, offset + 2, upperLayerChecksum(src, dst, IpProtocol.ICMPV6, buf, offset, offset + total));
  return total;
}

/**
 * The part of an offending IPv6 packet an error quotes: as much as fits without the error exceeding the
 * minimum IPv6 MTU of 1280 bytes (RFC 4443 section 2.4 (c)): 1280 - 40 - 8 = 1232 bytes.
 */
export function quoteIpv6Packet(packet: Uint8Array, maxBytes = 1232): Uint8Array {
  return packet.subarray(0, Math.min(packet.length, maxBytes));
}
