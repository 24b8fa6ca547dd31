/**
 * ARP for IPv4 over Ethernet (RFC 826). Other hardware/protocol pairs are reported as unsupported.
 */
import { get16, get32, requireRoom, set16, set32, slice } from './_bytes.ts';
import type { Ipv4Address, MacAddress } from './address.ts';
import { EtherType } from './ethernet.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** ARP operations (RFC 826). */
export const ArpOperation = { REQUEST: 1, REPLY: 2 } as const;

/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;

const HTYPE = 0;
const PTYPE = 2;
const HLEN = 4;
const PLEN = 5;
const OPER = 6;
const SHA = 8;
const SPA = 14;
const THA = 18;
const TPA = 24;

/** A zero-copy view of an ARP packet. Accessors never throw; call {@link ArpPacket.check} first. */
export class ArpPacket {
  constructor(readonly buffer: Uint8Array) {}
  /** Null when the fixed 8-byte header and the Ethernet/IPv4 addresses fit. */
  check(): WireError | null {
    if (this.buffer.length < 8) return truncated('arp', 8, this.buffer.length);
    const need = 8 + 2 * (this.hardwareLength + this.protocolLength);
    return this.buffer.length < need ? truncated('arp', need, this.buffer.length) : null;
  }
  get hardwareType(): number {
    return get16(this.buffer, HTYPE);
  }
  get protocolType(): number {
    return get16(this.buffer, PTYPE);
  }
  get hardwareLength(): number {
    return this.buffer[HLEN] ?? 0;
  }
  get protocolLength(): number {
    return this.buffer[PLEN] ?? 0;
  }
  get operation(): number {
    return get16(this.buffer, OPER);
  }
  /** Sender hardware address (Ethernet/IPv4 layout). */
  get senderMac(): MacAddress {
    return slice(this.buffer, SHA, SHA + 6);
  }
  get senderIp(): Ipv4Address {
    return get32(this.buffer, SPA);
  }
  get targetMac(): MacAddress {
    return slice(this.buffer, THA, THA + 6);
  }
  get targetIp(): Ipv4Address {
    return get32(this.buffer, TPA);
  }
}

/** The validated plain representation of an Ethernet/IPv4 ARP packet. */
export interface ArpRepr {
  readonly operation: number;
  readonly senderMac: MacAddress;
  readonly senderIp: Ipv4Address;
  readonly targetMac: MacAddress;
  readonly targetIp: Ipv4Address;
}

/** Parses an ARP packet; only hardware type 1 (Ethernet) with protocol IPv4 is supported. Never throws. */
export function parseArp(buf: Uint8Array): WireResult<ArpRepr> {
  const p = new ArpPacket(buf);
  const err = p.check();
  if (err) return { ok: false, error: err };
  if (p.hardwareType !== 1 || p.protocolType !== EtherType.IPV4 || p.hardwareLength !== 6 || p.protocolLength !== 4) {
    return fail('EXO_ERR_WIRE_UNSUPPORTED', 'arp: only Ethernet (1) / IPv4 (0x0800) with lengths 6/4 is supported');
  }
  if (p.operation !== ArpOperation.REQUEST && p.operation !== ArpOperation.REPLY) {
    return fail('EXO_ERR_WIRE_UNSUPPORTED', `arp: operation ${p.operation} is neither request nor reply`);
  }
  return ok({
    operation: p.operation,
    senderMac: p.senderMac,
    senderIp: p.senderIp,
    targetMac: p.targetMac,
    targetIp: p.targetIp,
  });
}

/** Bytes {@link emitArp} writes (always 28). */
export function arpBufferLength(_repr?: ArpRepr): number {
  return ARP_LEN;
}

/** Writes the packet at `offset`; returns 28. Throws RangeError only on a too-small buffer. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, offset = 0): number {
  requireRoom(buf, offset, ARP_LEN, 'emitArp');
  set16(buf, offset + HTYPE, 1);
  set16(buf, offset + PTYPE, EtherType.IPV4);
  buf[offset + HLEN] = 6;
  buf[offset + PLEN] = 4;
  set16(buf, offset + OPER, repr.operation);
  buf.set(repr.senderMac.subarray(0, 6), offset + SHA);
  set32(buf, offset + SPA, repr.senderIp);
  buf.set(repr.targetMac.subarray(0, 6), offset + THA);
  set32(buf, offset + TPA, repr.targetIp);
  return ARP_LEN;
}
