/**
 * Zero-copy views and representations of Ethernet, VLAN, ARP, IPv4, IPv6, ICMP, UDP and TCP.
 *
 * Every format has two faces (after smoltcp): a view class over bytes (`EthernetFrame`, `Ipv4Packet`, ...)
 * whose accessors never throw and whose `check()` reports what is wrong, and a validated plain representation
 * with `parseX` (never throws, returns a {@link WireResult}), `emitX` and `xBufferLength`.
 * @packageDocumentation
 */
export type { IpAddress, Ipv4Address, Ipv6Address, MacAddress } from './address.ts';
export {
  formatIpv4,
  formatIpv6,
  formatMac,
  ipv4Mask,
  ipv6Equals,
  ipv6MulticastMac,
  isMulticastMac,
  linkLocalFromMac,
  MAC_BROADCAST,
  MAC_ZERO,
  macEquals,
  parseIpv4 as parseIpv4Address,
  parseIpv4Cidr,
  parseIpv6 as parseIpv6Address,
  parseMac,
  solicitedNodeMulticast,
} from './address.ts';
export type { ArpRepr } from './arp.ts';
export { ARP_LEN, ArpOperation, ArpPacket, arpBufferLength, emitArp, parseArp } from './arp.ts';
export { foldChecksum, internetChecksum, pseudoHeaderSum, sumBytes, upperLayerChecksum } from './checksum.ts';
export type { EthernetRepr, VlanTag } from './ethernet.ts';
export {
  describeEthernet,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EtherType,
  emitEthernet,
  ethernetBufferLength,
  ethernetHeaderLength,
  MAX_VLAN_TAGS,
  parseEthernet,
  VLAN_TAG_LEN,
  VlanTagView,
} from './ethernet.ts';
export { extractFlowKey, FlowKey, FlowKeyStatus } from './flow-key.ts';
export type { Icmpv4Repr } from './icmpv4.ts';
export {
  emitIcmpv4,
  ICMP_HEADER_LEN,
  IcmpPacket,
  Icmpv4Type,
  Icmpv4Unreachable,
  icmpv4BufferLength,
  parseIcmpv4,
  quoteIpv4Packet,
} from './icmpv4.ts';
export type { Icmpv6Repr } from './icmpv6.ts';
export { emitIcmpv6, Icmpv6Type, icmpv6BufferLength, parseIcmpv6, quoteIpv6Packet } from './icmpv6.ts';
export type { ChecksumOptions } from './ip-protocol.ts';
export { IpProtocol } from './ip-protocol.ts';
export type { Ipv4Option, Ipv4Repr } from './ipv4.ts';
export {
  describeIpv4,
  emitIpv4,
  emitIpv4Options,
  IPV4_MAX_HEADER_LEN,
  IPV4_MIN_HEADER_LEN,
  Ipv4Packet,
  ipv4BufferLength,
  ipv4HeaderLength,
  ipv4Repr,
  parseIpv4,
  parseIpv4Options,
} from './ipv4.ts';
export type { Ipv4ReassemblerOptions } from './ipv4-fragment.ts';
export { fragmentIpv4, Ipv4Reassembler } from './ipv4-fragment.ts';
export type {
  Ipv6ExtensionHeader,
  Ipv6ExtensionRepr,
  Ipv6ExtensionWalk,
  Ipv6FragmentInfo,
  Ipv6Repr,
} from './ipv6.ts';
export {
  describeIpv6,
  emitIpv6,
  emitIpv6Extension,
  IPV6_HEADER_LEN,
  Ipv6Packet,
  ipv6BufferLength,
  ipv6ExtensionLength,
  ipv6Repr,
  isIpv6ExtensionHeader,
  MAX_IPV6_EXTENSIONS,
  parseIpv6,
  walkIpv6Extensions,
} from './ipv6.ts';
export type { WireError, WireErrorCode, WireResult } from './result.ts';
export type { SackBlock, TcpOptions, TcpRepr } from './tcp.ts';
export {
  emitTcp,
  formatTcpFlags,
  parseTcp,
  parseTcpOptions,
  TCP_MIN_HEADER_LEN,
  TcpFlags,
  TcpOptionKind,
  TcpPacket,
  tcpBufferLength,
  tcpHeaderLength,
  tcpOptionsLength,
  tcpSegmentLength,
} from './tcp.ts';
export type { UdpRepr } from './udp.ts';
export { emitUdp, parseUdp, UDP_HEADER_LEN, UdpPacket, udpBufferLength } from './udp.ts';
