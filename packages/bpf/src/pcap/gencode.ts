/**
 * Code generation for pcap-filter primitives on Ethernet (DLT_EN10MB), with the structure of libpcap's
 * gencode.c so that, instruction order included, every filter returns what libpcap's own code for it
 * returns on every packet (out-of-bounds loads end a filter, so order is part of the meaning).
 * @module
 */
import { BpfError, BpfErrorCode } from '../errors.ts';
import {
  ABS,
  ADD,
  ALU,
  B,
  fold,
  H,
  IMM,
  IND,
  type Insn,
  JEQ,
  JGE,
  JGT,
  JMP,
  JSET,
  K,
  LD,
  LDX,
  LEN,
  MEM,
  MISC,
  MSH,
  NEG,
  SKF_LL_OFF,
  ST,
  TAX,
  W,
  X,
} from '../insn.ts';
import { and, FALSE, not, or, type Pred, TRUE, test, touch } from './pred.ts';

const s = (code: number, k = 0): Insn => ({ code, jt: 0, jf: 0, k: k >>> 0 });

export const ETHERTYPE = {
  MPLS: 0x8847,
  PPPOES: 0x8864,
  IP: 0x0800,
  IPV6: 0x86dd,
  ARP: 0x0806,
  RARP: 0x8035,
  VLAN: 0x8100,
  QINQ_AD: 0x88a8,
  QINQ: 0x9100,
};
export const IPPROTO = { ICMP: 1, IGMP: 2, TCP: 6, UDP: 17, FRAGMENT: 44, ICMPV6: 58, SCTP: 132 };
const ETHERMTU = 1500;

/**
 * The link layers expressions compile for, as libpcap's gencode treats them: Ethernet (DLT_EN10MB), Linux
 * cooked captures v1 and v2 (what `tcpdump -i any` writes), and raw IP (no link header: the IP version nibble
 * tells IPv4 from IPv6; DLT_IPV4 and DLT_IPV6 carry one version only).
 */
export type LinkLayer = 'ethernet' | 'linux-sll' | 'linux-sll2' | 'raw' | 'ipv4' | 'ipv6';

/** libpcap's description of each link layer, for its error messages. */
const LINK_NAMES: Record<LinkLayer | 'ppp', string> = {
  ppp: 'PPP',
  ethernet: 'Ethernet',
  'linux-sll': 'Linux cooked v1',
  'linux-sll2': 'Linux cooked v2',
  raw: 'Raw IP',
  ipv4: 'Raw IPv4',
  ipv6: 'Raw IPv6',
};

/**
 * Where the link-layer type field and payload are, as parsing proceeds (libpcap's cstate): each `vlan` moves
 * both by 4 for what follows, each `mpls` the payload by 4 (the type is then read from the label stack and
 * the IP version), and `pppoes` makes what follows a PPP frame behind the PPPoE header.
 */
export class Offsets {
  linktype: number;
  linkpl: number;
  /** MPLS labels passed so far. */
  mplsDepth = 0;
  /** The link layer now: the given one, or PPP after `pppoes`. */
  link: LinkLayer | 'ppp';
  constructor(link: LinkLayer = 'ethernet') {
    this.link = link;
    // SLL: packet type, ARPHRD, address length, 8 address bytes, then the protocol at 14; SLL2 starts with
    // the protocol and has a 20-byte header. Raw IP has neither.
    this.linktype = link === 'ethernet' ? 12 : link === 'linux-sll' ? 14 : link === 'linux-sll2' ? 0 : -1;
    this.linkpl = link === 'ethernet' ? 14 : link === 'linux-sll' ? 16 : link === 'linux-sll2' ? 20 : 0;
  }
  clone(): Offsets {
    const o = new Offsets();
    o.link = this.link;
    o.linktype = this.linktype;
    o.linkpl = this.linkpl;
    o.mplsDepth = this.mplsDepth;
    return o;
  }
  /** Refuses what only Ethernet has (MAC addresses, VLAN tags), with libpcap's message. */
  requireEthernet(pos: number, message: string): void {
    if (this.link !== 'ethernet') throw semantic(pos, message.replace('%s', LINK_NAMES[this.link]));
  }
}

export function semantic(pos: number, message: string): BpfError {
  return new BpfError(BpfErrorCode.EXPR_SEMANTIC, `position ${pos}: ${message}`, { position: pos });
}

/**
 * A load of `size` at absolute offset k. Offsets in Linux's ancillary range cannot be ABS loads (the
 * verifier refuses them), so those go through X, which fails the bounds check the same way.
 */
export function ldAbs(size: number, k: number): Insn[] {
  if (k < SKF_LL_OFF) return [s(LD | size | ABS, k)];
  return [s(LDX | IMM, k), s(LD | size | IND, 0)];
}

export function cmp(k: number, size: number, v: number, jop = JEQ): Pred {
  return test(ldAbs(size, k), JMP | jop | K, v);
}

export function mcmp(k: number, size: number, v: number, mask: number): Pred {
  if (mask >>> 0 === 0xffffffff) return cmp(k, size, v);
  // Masked by 0, the comparison is decided (0 = v), but the load still runs and may end the filter.
  if (mask >>> 0 === 0) return v >>> 0 === 0 ? touch(ldAbs(size, k)) : and(touch(ldAbs(size, k)), FALSE);
  return test([...ldAbs(size, k), s(ALU | 0x50 | K, mask)], JMP | JEQ | K, v);
}

const SPECIAL_LINKTYPES = new Set([0xfe, 0x06, 0xf0, 0xe0, 0x809b, 0x80f3]);

/**
 * gen_linktype: a test that the link layer carries `type` (an EtherType, or for values up to 1500 an 802.2
 * LLC DSAP), per link layer as libpcap writes it.
 */
export function linktype(o: Offsets, type: number, pos = 0): Pred {
  if (o.mplsDepth > 0) {
    // gen_mpls_linktype: the bottom-of-stack bit of the last label, then the IP version.
    const bottom = mcmp(o.linkpl - 2, B, 0x01, 0x01);
    if (type === ETHERTYPE.IP) return and(bottom, mcmp(o.linkpl, B, 0x40, 0xf0));
    if (type === ETHERTYPE.IPV6) return and(bottom, mcmp(o.linkpl, B, 0x60, 0xf0));
    throw semantic(pos, 'unsupported protocol over mpls');
  }
  switch (o.link) {
    case 'ppp':
      return cmp(o.linktype, H, PPP_TYPES.get(type) ?? type);
    case 'raw':
      if (type === ETHERTYPE.IP) return mcmp(o.linkpl, B, 0x40, 0xf0);
      if (type === ETHERTYPE.IPV6) return mcmp(o.linkpl, B, 0x60, 0xf0);
      return FALSE;
    case 'ipv4':
      return type === ETHERTYPE.IP ? TRUE : FALSE;
    case 'ipv6':
      return type === ETHERTYPE.IPV6 ? TRUE : FALSE;
    case 'linux-sll2':
      // libpcap compares the protocol field alone here, LLC values included.
      return cmp(o.linktype, H, type);
  }
  // Ethernet and Linux cooked v1: an EtherType, or an 802.2 LLC frame's DSAP (libpcap's special LLC and
  // AppleTalk encodings are not supported).
  if (SPECIAL_LINKTYPES.has(type)) {
    throw semantic(pos, `ether proto 0x${type.toString(16)} (an LLC/AppleTalk special case) is not supported`);
  }
  if (type > ETHERMTU) return cmp(o.linktype, H, type);
  // SLL marks LLC frames with protocol LINUX_SLL_P_802_2; Ethernet with a length instead of a type.
  if (o.link === 'linux-sll') return and(cmp(o.linktype, H, LINUX_SLL_P_802_2), cmp(o.linkpl, B, type));
  return and(not(test(ldAbs(H, o.linktype), JMP | JGT | K, ETHERMTU)), cmp(o.linktype + 2, B, type));
}

/** The SLL protocol value of 802.2 LLC frames. */
const LINUX_SLL_P_802_2 = 4;

/** libpcap's ethertype_to_ppptype: the PPP protocol numbers of EtherTypes (others are used as they are). */
const PPP_TYPES = new Map<number, number>([
  [ETHERTYPE.IP, 0x0021],
  [ETHERTYPE.IPV6, 0x0057],
  [0x6003, 0x0027], // DECnet
  [0x809b, 0x0029], // AppleTalk
  [0x0600, 0x0025], // Xerox NS
  [0xfe, 0x0023], // ISO (LLC SAP)
  [0x42, 0x0031], // 802.1D bridge PDU (LLC SAP)
  [0xe0, 0x002b], // IPX (LLC SAP)
]);

export function ipProto(o: Offsets, v: number): Pred {
  return and(linktype(o, ETHERTYPE.IP), cmp(o.linkpl + 9, B, v));
}

export function ip6Proto(o: Offsets, v: number): Pred {
  const direct = cmp(o.linkpl + 6, B, v);
  const afterFragment = and(cmp(o.linkpl + 6, B, IPPROTO.FRAGMENT), cmp(o.linkpl + 40, B, v));
  return and(linktype(o, ETHERTYPE.IPV6), or(direct, afterFragment));
}

/** Protocol names usable alone (`tcp`) and as qualifiers. */
export type ProtoName = 'link' | 'ip' | 'ip6' | 'arp' | 'rarp' | 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmp6' | 'igmp';

/** gen_proto_abbrev: the test a bare protocol name stands for. */
export function protoAbbrev(o: Offsets, p: ProtoName, pos: number): Pred {
  switch (p) {
    case 'ip':
      return linktype(o, ETHERTYPE.IP);
    case 'ip6':
      return linktype(o, ETHERTYPE.IPV6);
    case 'arp':
      return linktype(o, ETHERTYPE.ARP);
    case 'rarp':
      return linktype(o, ETHERTYPE.RARP);
    case 'tcp':
      return or(ipProto(o, IPPROTO.TCP), ip6Proto(o, IPPROTO.TCP));
    case 'udp':
      return or(ipProto(o, IPPROTO.UDP), ip6Proto(o, IPPROTO.UDP));
    case 'sctp':
      return or(ipProto(o, IPPROTO.SCTP), ip6Proto(o, IPPROTO.SCTP));
    case 'icmp':
      return ipProto(o, IPPROTO.ICMP);
    case 'igmp':
      return ipProto(o, IPPROTO.IGMP);
    case 'icmp6':
      return ip6Proto(o, IPPROTO.ICMPV6);
    case 'link':
      throw semantic(pos, "'ether' alone is not a test; use it as a qualifier (ether host, ether proto...)");
  }
}

/** `[ip|ip6|ether] proto N` (gen_proto). */
export function protoNumber(o: Offsets, v: number, p: ProtoName | undefined, pos: number): Pred {
  switch (p) {
    case undefined:
      if (v > 255) throw semantic(pos, `protocol number ${v} is greater than 255`);
      return or(ipProto(o, v), ip6Proto(o, v));
    case 'link':
      if (v > 0xffff) throw semantic(pos, `ether proto ${v} is greater than 65535`);
      return linktype(o, v, pos);
    case 'ip':
      if (v > 255) throw semantic(pos, `protocol number ${v} is greater than 255`);
      return ipProto(o, v);
    case 'ip6':
      if (v > 255) throw semantic(pos, `protocol number ${v} is greater than 255`);
      return ip6Proto(o, v);
    default:
      throw semantic(pos, `'${p} proto' is not supported`);
  }
}

export type Dir = 'src' | 'dst' | 'or' | 'and';

function bothWays(dir: Dir | undefined, src: () => Pred, dst: () => Pred): Pred {
  switch (dir) {
    case 'src':
      return src();
    case 'dst':
      return dst();
    case 'and': {
      const a = src();
      return and(a, dst());
    }
    default: {
      const a = src();
      return or(a, dst());
    }
  }
}

function hostop(o: Offsets, addr: number, mask: number, dir: Dir | undefined, et: number, so: number, dof: number) {
  return bothWays(
    dir,
    () => and(linktype(o, et), mcmp(o.linkpl + so, W, addr, mask)),
    () => and(linktype(o, et), mcmp(o.linkpl + dof, W, addr, mask)),
  );
}

/** IPv4 host or net (gen_host). */
export function host4(
  o: Offsets,
  addr: number,
  mask: number,
  p: ProtoName | undefined,
  dir: Dir | undefined,
  what: 'host' | 'net',
  pos: number,
): Pred {
  switch (p) {
    case undefined: {
      const ip = hostop(o, addr, mask, dir, ETHERTYPE.IP, 12, 16);
      // Under MPLS only IP can follow a label stack (gen_host leaves ARP and RARP out).
      if (o.mplsDepth > 0) return ip;
      const arp = hostop(o, addr, mask, dir, ETHERTYPE.ARP, 14, 24);
      const first = or(ip, arp);
      return or(first, hostop(o, addr, mask, dir, ETHERTYPE.RARP, 14, 24));
    }
    case 'ip':
      return hostop(o, addr, mask, dir, ETHERTYPE.IP, 12, 16);
    case 'arp':
      return hostop(o, addr, mask, dir, ETHERTYPE.ARP, 14, 24);
    case 'rarp':
      return hostop(o, addr, mask, dir, ETHERTYPE.RARP, 14, 24);
    case 'link':
      throw semantic(pos, `link-layer modifier applied to ${what}`);
    default:
      throw semantic(pos, `'${p}' modifier applied to ${what}`);
  }
}

/** IPv6 host or net (gen_host6): four 32-bit words, in order, after the type test. */
export function host6(
  o: Offsets,
  addr: readonly number[],
  mask: readonly number[],
  p: ProtoName | undefined,
  dir: Dir | undefined,
  what: 'host' | 'net',
  pos: number,
): Pred {
  if (p !== undefined && p !== 'ip6') {
    throw semantic(
      pos,
      p === 'link' ? `link-layer modifier applied to ip6 ${what}` : `'${p}' modifier applied to ip6 ${what}`,
    );
  }
  const side = (off: number) => {
    let words = mcmp(o.linkpl + off + 12, W, addr[3]!, mask[3]!);
    for (let i = 2; i >= 0; i--) words = and(mcmp(o.linkpl + off + 4 * i, W, addr[i]!, mask[i]!), words);
    return and(linktype(o, ETHERTYPE.IPV6), words);
  };
  return bothWays(
    dir,
    () => side(8),
    () => side(24),
  );
}

/** Six bytes at an offset: the word at +2 first, then the half-word at +0 (gen_bcmp's order). */
function bcmp6(off: number, mac: readonly number[]): Pred {
  const word = ((mac[2]! << 24) | (mac[3]! << 16) | (mac[4]! << 8) | mac[5]!) >>> 0;
  return and(cmp(off + 2, W, word), cmp(off, H, (mac[0]! << 8) | mac[1]!));
}

const NO_MAC = 'ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel';

/** `ether host/src/dst MAC` (gen_ehostop). */
export function etherHost(o: Offsets, mac: readonly number[], dir: Dir | undefined, pos: number): Pred {
  o.requireEthernet(pos, NO_MAC);
  return bothWays(
    dir,
    () => bcmp6(6, mac),
    () => bcmp6(0, mac),
  );
}

export function etherBroadcast(): Pred {
  return bcmp6(0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

export function multicast(o: Offsets, p: ProtoName | undefined, pos: number): Pred {
  switch (p) {
    case undefined:
    case 'link':
      o.requireEthernet(
        pos,
        'link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel',
      );
      return test(ldAbs(B, 0), JMP | JSET | K, 1);
    case 'ip':
      return and(linktype(o, ETHERTYPE.IP), cmp(o.linkpl + 16, B, 224, JGE));
    case 'ip6':
      return and(linktype(o, ETHERTYPE.IPV6), cmp(o.linkpl + 24, B, 255));
    default:
      throw semantic(pos, `only link-layer/IP multicast filters supported, not '${p} multicast'`);
  }
}

export function broadcast(o: Offsets, p: ProtoName | undefined, pos: number): Pred {
  if (p === undefined || p === 'link') {
    o.requireEthernet(pos, 'not a broadcast link');
    return etherBroadcast();
  }
  if (p === 'ip') throw semantic(pos, "netmask not known, so 'ip broadcast' not supported");
  throw semantic(pos, `only link-layer/IP broadcast filters supported, not '${p} broadcast'`);
}

/** Not a later fragment: the IPv4 fragment offset is 0. */
function ipfrag(o: Offsets): Pred {
  return not(test(ldAbs(H, o.linkpl + 6), JMP | JSET | K, 0x1fff));
}

/** A 16-bit field at `off` in the transport header after an IPv4 header of any length. */
function transportField4(o: Offsets, off: number): Insn[] {
  return [s(LDX | B | MSH, o.linkpl), s(LD | H | IND, o.linkpl + off)];
}

type Atom = (off: number) => Pred;

function portAtoms(dir: Dir | undefined, atom: Atom): Pred {
  return bothWays(
    dir,
    () => atom(0),
    () => atom(2),
  );
}

function v4(
  o: Offsets,
  protos: readonly number[],
  dir: Dir | undefined,
  atom4: (o: Offsets, off: number) => Pred,
): Pred {
  const portop = (proto: number) =>
    and(
      and(cmp(o.linkpl + 9, B, proto), ipfrag(o)),
      portAtoms(dir, (off) => atom4(o, off)),
    );
  let b1: Pred;
  if (protos.length === 1) b1 = portop(protos[0]!);
  else {
    const tcp = portop(IPPROTO.TCP);
    b1 = or(tcp, portop(IPPROTO.UDP));
    b1 = or(portop(IPPROTO.SCTP), b1);
  }
  return and(linktype(o, ETHERTYPE.IP), b1);
}

function v6(
  o: Offsets,
  protos: readonly number[],
  dir: Dir | undefined,
  atom6: (o: Offsets, off: number) => Pred,
): Pred {
  const portop = (proto: number) =>
    and(
      cmp(o.linkpl + 6, B, proto),
      portAtoms(dir, (off) => atom6(o, off)),
    );
  let b1: Pred;
  if (protos.length === 1) b1 = portop(protos[0]!);
  else {
    const tcp = portop(IPPROTO.TCP);
    b1 = or(tcp, portop(IPPROTO.UDP));
    b1 = or(portop(IPPROTO.SCTP), b1);
  }
  return and(linktype(o, ETHERTYPE.IPV6), b1);
}

function transportProtos(p: ProtoName | undefined, what: string, pos: number): number[] {
  switch (p) {
    case undefined:
      return [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP];
    case 'tcp':
      return [IPPROTO.TCP];
    case 'udp':
      return [IPPROTO.UDP];
    case 'sctp':
      return [IPPROTO.SCTP];
    default:
      throw semantic(pos, `illegal qualifier of '${what}'`);
  }
}

/** `[tcp|udp|sctp] [src|dst] port N` (gen_port6 or gen_port). */
export function port(o: Offsets, v: number, p: ProtoName | undefined, dir: Dir | undefined, pos: number): Pred {
  const protos = transportProtos(p, 'port', pos);
  if (v > 65535) throw semantic(pos, `illegal port number ${v} > 65535`);
  const six = v6(o, protos, dir, (oo, off) => cmp(oo.linkpl + 40 + off, H, v));
  const four = v4(o, protos, dir, (oo, off) => test(transportField4(oo, off), JMP | JEQ | K, v));
  return or(six, four);
}

/** `[tcp|udp|sctp] [src|dst] portrange A-B`. */
export function portrange(
  o: Offsets,
  a: number,
  b: number,
  p: ProtoName | undefined,
  dir: Dir | undefined,
  pos: number,
) {
  const protos = transportProtos(p, 'portrange', pos);
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (hi > 65535) throw semantic(pos, `illegal port number ${hi} > 65535`);
  const range = (stmts: Insn[]) => and(test(stmts, JMP | JGE | K, lo), not(test(stmts, JMP | JGT | K, hi)));
  const six = v6(o, protos, dir, (oo, off) => range(ldAbs(H, oo.linkpl + 40 + off)));
  const four = v4(o, protos, dir, (oo, off) => range(transportField4(oo, off)));
  return or(six, four);
}

export function lenCompare(jop: number, v: number): Pred {
  return test([s(LD | W | LEN)], JMP | jop | K, v);
}

/** `vlan [id]`: the TPID test at the current offsets, then every later offset moves by 4. */
export function vlan(o: Offsets, id: number | undefined, pos: number): Pred {
  if (o.mplsDepth > 0) throw semantic(pos, 'no VLAN match after MPLS');
  o.requireEthernet(pos, 'no VLAN support for %s');
  if (id !== undefined && id > 4095) throw semantic(pos, `VLAN tag ${id} greater than maximum 4095`);
  let b: Pred = or(linktype(o, ETHERTYPE.VLAN), linktype(o, ETHERTYPE.QINQ_AD));
  b = or(b, linktype(o, ETHERTYPE.QINQ));
  if (id !== undefined) b = and(b, mcmp(o.linkpl, H, id, 0x0fff));
  o.linkpl += 4;
  o.linktype += 4;
  return b;
}

/** `mpls [label]` (gen_mpls): the MPLS EtherType, or below a label its bottom-of-stack bit clear. */
export function mpls(o: Offsets, label: number | undefined, pos: number): Pred {
  let b: Pred;
  if (o.mplsDepth > 0) b = mcmp(o.linkpl - 2, B, 0, 0x01);
  else if (o.link === 'ethernet') b = linktype(o, ETHERTYPE.MPLS, pos);
  else if (o.link === 'ppp') b = linktype(o, PPP_MPLS_UNICAST, pos);
  else throw semantic(pos, `no MPLS support for ${LINK_NAMES[o.link]}`);
  if (label !== undefined) {
    if (label > 0xfffff) throw semantic(pos, `MPLS label ${label} greater than maximum 1048575`);
    // The label is the top 20 bits of the 32-bit entry.
    b = and(b, mcmp(o.linkpl, W, (label << 12) >>> 0, 0xfffff000));
  }
  o.linkpl += 4;
  o.mplsDepth++;
  return b;
}

/** PPP's protocol number for MPLS unicast. */
const PPP_MPLS_UNICAST = 0x0281;

/**
 * `pppoes [session]` (gen_pppoes): the PPPoE session EtherType; what follows is a PPP frame whose protocol
 * field comes after the 6-byte PPPoE header.
 */
export function pppoes(o: Offsets, session: number | undefined, pos: number): Pred {
  let b = linktype(o, ETHERTYPE.PPPOES, pos);
  if (session !== undefined) {
    if (session > 0xffff) throw semantic(pos, `PPPoE session number ${session} greater than maximum 65535`);
    b = and(b, mcmp(o.linkpl, W, session, 0xffff));
  }
  o.linktype = o.linkpl + 6;
  o.linkpl += 8;
  o.link = 'ppp';
  return b;
}

/** `llc` (gen_llc): an 802.3 frame (a length, not a type) that is not NetWare's raw 802.3 (DSAP/SSAP 0xffff). */
export function llc(o: Offsets, pos: number): Pred {
  if (o.link !== 'ethernet') throw semantic(pos, `'llc' not supported for ${LINK_NAMES[o.link]}`);
  // libpcap reads DSAP/SSAP at the link payload proper, before any MPLS label (linkpl has moved past them).
  const payload = o.linkpl - 4 * o.mplsDepth;
  return and(not(test(ldAbs(H, o.linktype), JMP | JGT | K, ETHERMTU)), not(cmp(payload, H, 0xffff)));
}

/**
 * `inbound` / `outbound` (gen_inbound): the packet type the capture recorded, PACKET_OUTGOING (4) or not.
 * Only Linux cooked captures carry it; elsewhere libpcap reads the kernel's SKF_AD_PKTTYPE, which neither a
 * saved capture nor our driver has, so it is refused there (as `tcpdump -r` refuses it for savefiles).
 */
export function direction(o: Offsets, outbound: boolean, pos: number): Pred {
  if (o.link !== 'linux-sll' && o.link !== 'linux-sll2') {
    throw semantic(
      pos,
      `inbound/outbound not supported on ${LINK_NAMES[o.link]}: only Linux cooked captures record the direction`,
    );
  }
  const load = o.link === 'linux-sll' ? ldAbs(H, 0) : ldAbs(B, 10);
  const outgoing = test(load, JMP | JEQ | K, PACKET_OUTGOING);
  return outbound ? outgoing : not(outgoing);
}

const PACKET_OUTGOING = 4;

// ---------------------------------------------------------------------------------------------------------
// Arithmetic: `proto[expr : size]`, len, numbers and operators; relations between them.

/**
 * `first`: the constant libpcap's code for the value loads first, when its first statement is `ld #k`
 * (gencode.c checks that statement of a divisor or shift count).
 */
export type Arth = ArthNode & { readonly first?: number };

type ArthNode =
  | { readonly kind: 'const'; readonly v: number; readonly checks: Pred }
  | { readonly kind: 'len'; readonly checks: Pred }
  | {
      readonly kind: 'load';
      /** link: from the frame start; net: from the link payload; trans: after an IPv4 header; icmp6: after a fixed IPv6 header. */
      readonly layer: 'link' | 'net' | 'trans';
      readonly base: number;
      readonly msh: number;
      readonly size: number;
      readonly index: Arth;
      readonly checks: Pred;
    }
  | { readonly kind: 'bin'; readonly op: number; readonly a: Arth; readonly b: Arth; readonly checks: Pred }
  | { readonly kind: 'neg'; readonly a: Arth; readonly checks: Pred };

export const ALU_OPS: Record<string, number> = {
  '+': 0x00,
  '-': 0x10,
  '*': 0x20,
  '/': 0x30,
  '|': 0x40,
  '&': 0x50,
  '<<': 0x60,
  '>>': 0x70,
  '%': 0x90,
  '^': 0xa0,
};

export function constArth(v: number, first: number | undefined = v >>> 0): Arth {
  return { kind: 'const', v: v >>> 0, checks: TRUE, first };
}

/**
 * gen_arth: a binary operation. Errors as libpcap's: its gencode refuses a divisor or shift count whose
 * code starts with a zero (or > 31) constant, and its optimiser one that folds to such a constant.
 */
export function binArth(op: string, a: Arth, b: Arth, pos: number): Arth {
  const code = ALU_OPS[op]!;
  const first = b.first;
  if (first !== undefined) {
    if (code === 0x30 && first === 0) throw semantic(pos, 'division by zero');
    if (code === 0x90 && first === 0) throw semantic(pos, 'modulus by zero');
    if ((code === 0x60 || code === 0x70) && first > 31) throw semantic(pos, 'shift by more than 31 bits');
  }
  if (b.kind === 'const') {
    if (code === 0x30 && b.v === 0) throw semantic(pos, 'division by zero');
    if (code === 0x90 && b.v === 0) throw semantic(pos, 'modulus by zero');
    // Between two constants libpcap's optimiser folds a long shift to 0 instead of refusing it.
    if ((code === 0x60 || code === 0x70) && b.v > 31 && a.kind !== 'const') {
      throw semantic(pos, 'shift by more than 31 bits');
    }
  }
  if (a.kind === 'const' && b.kind === 'const') {
    const v = fold(code, a.v, b.v);
    if (v !== undefined) return constArth(v, a.first);
  }
  // libpcap's gen_arth keeps only the left operand's protocol checks (`ether[0] + tcp[0]` does not test
  // for TCP): a quirk, but it is what its filters do, so it is what ours do.
  return { kind: 'bin', op: code, a, b, checks: a.checks, first: a.first };
}

export function negArth(a: Arth): Arth {
  if (a.kind === 'const') return constArth(-a.v, a.first);
  return { kind: 'neg', a, checks: a.checks, first: a.first };
}

export function lenArth(): Arth {
  return { kind: 'len', checks: TRUE };
}

/** gen_load: `proto[index : size]`, with the protocol checks libpcap puts in front of the load. */
export function loadArth(o: Offsets, p: ProtoName, index: Arth, size: number, pos: number): Arth {
  if (size !== 1 && size !== 2 && size !== 4) throw semantic(pos, 'data size must be 1, 2, or 4');
  const bsize = size === 1 ? B : size === 2 ? H : W;
  const inner = index.checks;
  switch (p) {
    case 'link':
      return { kind: 'load', layer: 'link', base: 0, msh: 0, size: bsize, index, checks: inner, first: index.first };
    case 'ip':
    case 'ip6':
    case 'arp':
    case 'rarp':
      return {
        kind: 'load',
        layer: 'net',
        base: o.linkpl,
        msh: 0,
        size: bsize,
        index,
        checks: and(inner, protoAbbrev(o, p, pos)),
        first: index.first,
      };
    case 'icmp6': {
      const b = and(and(inner, linktype(o, ETHERTYPE.IPV6)), cmp(o.linkpl + 6, B, IPPROTO.ICMPV6));
      return {
        kind: 'load',
        layer: 'net',
        base: o.linkpl + 40,
        msh: 0,
        size: bsize,
        index,
        checks: b,
        first: index.first,
      };
    }
    default: {
      const b = and(linktype(o, ETHERTYPE.IP), and(inner, and(protoAbbrev(o, p, pos), ipfrag(o))));
      return {
        kind: 'load',
        layer: 'trans',
        base: o.linkpl,
        msh: o.linkpl,
        size: bsize,
        index,
        checks: b,
        first: index.first,
      };
    }
  }
}

class Regs {
  private used = 0;
  alloc(pos: number): number {
    if (this.used >= 16) throw semantic(pos, 'too many registers needed to evaluate expression');
    return this.used++;
  }
  free(): void {
    this.used--;
  }
}

/** Statements leaving the value of `e` in A (X and scratch words are clobbered). */
function emit(e: Arth, out: Insn[], regs: Regs, pos: number): void {
  switch (e.kind) {
    case 'const':
      out.push(s(LD | IMM, e.v));
      return;
    case 'len':
      out.push(s(LD | W | LEN));
      return;
    case 'neg':
      emit(e.a, out, regs, pos);
      out.push(s(ALU | NEG));
      return;
    case 'bin':
      if (
        e.b.kind === 'const' &&
        !((e.op === 0x30 || e.op === 0x90) && e.b.v === 0) &&
        !((e.op === 0x60 || e.op === 0x70) && e.b.v > 31)
      ) {
        emit(e.a, out, regs, pos);
        out.push(s(ALU | e.op | K, e.b.v));
        return;
      }
      binaryViaX(e.a, e.b, out, regs, pos);
      out.push(s(ALU | e.op | X));
      return;
    case 'load': {
      const idx = e.index;
      if (e.layer === 'trans') {
        // X = IPv4 header length; a constant index folds into the load's offset when no sum can wrap.
        if (idx.kind === 'const' && e.base + idx.v + 60 < SKF_LL_OFF) {
          out.push(s(LDX | B | MSH, e.msh), s(LD | e.size | IND, e.base + idx.v));
          return;
        }
        const r = regs.alloc(pos);
        emit(idx, out, regs, pos);
        out.push(
          s(ST, r),
          s(LDX | B | MSH, e.msh),
          s(LD | MEM, r),
          s(ALU | ADD | X),
          s(MISC | TAX),
          s(LD | e.size | IND, e.base),
        );
        regs.free();
        return;
      }
      if (idx.kind === 'const' && e.base + idx.v < SKF_LL_OFF) {
        out.push(s(LD | e.size | ABS, e.base + idx.v));
        return;
      }
      emit(idx, out, regs, pos);
      out.push(s(MISC | TAX), s(LD | e.size | IND, e.base));
      return;
    }
  }
}

/** Whether computing e leaves X alone (no indexed or header-length loads, no operation through X). */
function keepsX(e: Arth): boolean {
  switch (e.kind) {
    case 'const':
    case 'len':
      return true;
    case 'neg':
      return keepsX(e.a);
    case 'bin':
      return (
        e.b.kind === 'const' &&
        keepsX(e.a) &&
        !((e.op === 0x30 || e.op === 0x90) && e.b.v === 0) &&
        !((e.op === 0x60 || e.op === 0x70) && e.b.v > 31)
      );
    case 'load':
      return e.layer !== 'trans' && e.index.kind === 'const' && e.base + e.index.v < SKF_LL_OFF;
  }
}

/**
 * Leaves a in A and b in X. Both are computed in one block, where every load runs whatever the order (a
 * failing one ends the filter either way), so b may go first when a does not disturb X.
 */
function binaryViaX(a: Arth, b: Arth, out: Insn[], regs: Regs, pos: number): void {
  if (keepsX(a)) {
    emit(b, out, regs, pos);
    out.push(s(MISC | TAX));
    emit(a, out, regs, pos);
    return;
  }
  const r = regs.alloc(pos);
  emit(a, out, regs, pos);
  out.push(s(ST, r));
  emit(b, out, regs, pos);
  out.push(s(MISC | TAX), s(LD | MEM, r));
  regs.free();
}

/** gen_relation: `a op b` with op one of = != < <= > >=, after both sides' protocol checks. */
export function relation(op: string, a: Arth, b: Arth, pos: number): Pred {
  const [jop, reversed] = (
    {
      '=': [JEQ, false],
      '!=': [JEQ, true],
      '>': [JGT, false],
      '<=': [JGT, true],
      '>=': [JGE, false],
      '<': [JGE, true],
    } as Record<string, [number, boolean]>
  )[op]!;
  const checks = and(a.checks, b.checks);
  let t: Pred;
  if (a.kind === 'const' && b.kind === 'const') {
    const holds = jop === JEQ ? a.v === b.v : jop === JGT ? a.v > b.v : a.v >= b.v;
    t = { kind: 'const', value: holds };
  } else {
    const out: Insn[] = [];
    const regs = new Regs();
    if (b.kind === 'const' && b.v === 0 && jop === JEQ && a.kind === 'bin' && a.op === 0x50 && a.b.kind === 'const') {
      // `x & m = 0` is `not (x jset m)`: the same loads, one instruction fewer.
      emit(a.a, out, regs, pos);
      t = not(test(out, JMP | JSET | K, a.b.v));
    } else if (b.kind === 'const') {
      emit(a, out, regs, pos);
      t = test(out, JMP | jop | K, b.v);
    } else {
      binaryViaX(a, b, out, regs, pos);
      t = test(out, JMP | jop | X, 0);
    }
  }
  return and(checks, reversed ? not(t) : t);
}
