import {
  EtherType,
  emitEthernet,
  emitIcmpv4,
  emitIpv4,
  emitTcp,
  emitUdp,
  type Icmpv4Repr,
  IpProtocol,
  ipv4Repr,
  parseIpv4Address,
  parseMac,
} from '@exonet/wire';

/** Builders of real frames for the core's tests (through @exonet/wire, checksums included). */
export interface Endpoints {
  srcMac?: string;
  dstMac?: string;
  src: string;
  dst: string;
  vlan?: number;
}

function ip(s: string): number {
  const r = parseIpv4Address(s);
  if (r === null) throw new Error(`bad address ${s}`);
  return r;
}

function mac(s: string): Uint8Array {
  const r = parseMac(s);
  if (r === null) throw new Error(`bad mac ${s}`);
  return r;
}

export function ethernet(e: Endpoints, etherType: number, payload: Uint8Array): Uint8Array {
  const repr = {
    dst: mac(e.dstMac ?? '02:00:00:00:00:02'),
    src: mac(e.srcMac ?? '02:00:00:00:00:01'),
    etherType,
    vlans: e.vlan === undefined ? [] : [{ tpid: EtherType.VLAN, pcp: 0, dei: false, vid: e.vlan }],
    payload,
  };
  const buf = new Uint8Array(14 + (e.vlan === undefined ? 0 : 4) + payload.length);
  emitEthernet(repr, buf, 0);
  return buf;
}

export function ipv4(
  e: Endpoints,
  protocol: number,
  l4: Uint8Array,
  extra: { ident?: number; moreFragments?: boolean; fragmentOffset?: number } = {},
): Uint8Array {
  const repr = ipv4Repr({ src: ip(e.src), dst: ip(e.dst), protocol, payload: l4, ...extra });
  const buf = new Uint8Array(20 + l4.length);
  emitIpv4(repr, buf, 0);
  return buf;
}

export function udp(e: Endpoints & { sport: number; dport: number; payload?: Uint8Array }): Uint8Array {
  const payload = e.payload ?? new Uint8Array(8);
  const l4 = new Uint8Array(8 + payload.length);
  emitUdp({ srcPort: e.sport, dstPort: e.dport, payload }, l4, 0, ip(e.src), ip(e.dst));
  return ethernet(e, EtherType.IPV4, ipv4(e, IpProtocol.UDP, l4));
}

export function tcp(e: Endpoints & { sport: number; dport: number; flags: number; payload?: Uint8Array }): Uint8Array {
  const payload = e.payload ?? new Uint8Array(0);
  const repr = {
    srcPort: e.sport,
    dstPort: e.dport,
    seq: 1000,
    ack: 0,
    flags: e.flags,
    window: 65535,
    urgent: 0,
    options: {},
    payload,
  };
  const l4 = new Uint8Array(20 + payload.length);
  emitTcp(repr, l4, 0, ip(e.src), ip(e.dst));
  return ethernet(e, EtherType.IPV4, ipv4(e, IpProtocol.TCP, l4));
}

/** An ICMPv4 message; for errors, `quoted` is the offending frame (its IP part is quoted). */
export function icmpError(e: Endpoints, kind: 'dest-unreachable' | 'time-exceeded', offending: Uint8Array): Uint8Array {
  const quoted = offending.subarray(14, 14 + 28);
  const repr: Icmpv4Repr =
    kind === 'dest-unreachable' ? { kind, code: 3, nextHopMtu: 0, quoted } : { kind: 'time-exceeded', code: 0, quoted };
  const l4 = new Uint8Array(8 + quoted.length);
  emitIcmpv4(repr, l4, 0);
  return ethernet(e, EtherType.IPV4, ipv4(e, IpProtocol.ICMP, l4));
}

export function icmpEcho(e: Endpoints, kind: 'echo-request' | 'echo-reply', ident: number): Uint8Array {
  const repr: Icmpv4Repr = { kind, ident, seq: 1, data: new Uint8Array(8) };
  const l4 = new Uint8Array(16);
  emitIcmpv4(repr, l4, 0);
  return ethernet(e, EtherType.IPV4, ipv4(e, IpProtocol.ICMP, l4));
}
