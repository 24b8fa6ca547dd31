/**
 * Captures of other link layers replayed onto an Ethernet wire, as tcprewrite's `--dlt enet` does: a Linux
 * cooked capture (what `tcpdump -i any` writes) or a raw IP capture gets an Ethernet header in front of its
 * network-layer payload, addressed as the capture says the packet arrived. What the capturing host sent
 * itself (SLL's PACKET_OUTGOING) never arrived, so it is left out.
 * @module
 */

import { linkLayerOf } from '@exonet/bpf';

/** The source address of a frame whose capture did not record one (locally administered). */
export const SYNTHETIC_SOURCE = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0xfe);
/** The destination of a packet that was for another host (PACKET_OTHERHOST): not the NIC's address. */
const OTHER_HOST = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0xfd);
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

const PACKET_HOST = 0;
const PACKET_BROADCAST = 1;
const PACKET_MULTICAST = 2;
const PACKET_OTHERHOST = 3;
const PACKET_OUTGOING = 4;

/** A record framed as Ethernet, or null when it is left out. */
export type Framer = (data: Uint8Array, wirelen: number) => { data: Uint8Array; wirelen: number } | null;

/**
 * The framer for a capture's link type (those @exonet/bpf compiles expressions for, KNOWN_LINKTYPES), addressing the packets that were for the capturing host to `mac`;
 * undefined when the link type cannot be framed as Ethernet.
 */
export function ethernetFramer(linktype: number, mac: Uint8Array): Framer | undefined {
  switch (linkLayerOf(linktype)) {
    case 'ethernet':
      return (data, wirelen) => ({ data, wirelen });
    case 'linux-sll':
      return (data, wirelen) => {
        if (data.length < 16) return null;
        const halen = (data[4]! << 8) | data[5]!;
        return cooked(data, wirelen, 16, (data[0]! << 8) | data[1]!, (data[14]! << 8) | data[15]!, halen, 6, mac);
      };
    case 'linux-sll2':
      return (data, wirelen) => {
        if (data.length < 20) return null;
        return cooked(data, wirelen, 20, data[10]!, (data[0]! << 8) | data[1]!, data[11]!, 12, mac);
      };
    case 'raw':
    case 'ipv4':
    case 'ipv6':
      return (data, wirelen) => {
        if (data.length < 1) return null;
        const version = data[0]! >> 4;
        if (version !== 4 && version !== 6) return null;
        return frame(mac, SYNTHETIC_SOURCE, version === 4 ? 0x0800 : 0x86dd, data, 0, wirelen);
      };
    case undefined:
      return undefined;
  }
}

function cooked(
  data: Uint8Array,
  wirelen: number,
  header: number,
  pkttype: number,
  protocol: number,
  halen: number,
  addrAt: number,
  mac: Uint8Array,
): { data: Uint8Array; wirelen: number } | null {
  if (pkttype === PACKET_OUTGOING) return null;
  const payload = data.subarray(header);
  const dst =
    pkttype === PACKET_HOST
      ? mac
      : pkttype === PACKET_BROADCAST
        ? BROADCAST
        : pkttype === PACKET_MULTICAST
          ? multicastMac(protocol, payload)
          : pkttype === PACKET_OTHERHOST
            ? OTHER_HOST
            : mac;
  const src = halen === 6 ? data.subarray(addrAt, addrAt + 6) : SYNTHETIC_SOURCE;
  // A protocol below 0x0600 is not an EtherType (802.2 LLC is 4, Novell's raw 802.3 is 1): the frame is
  // 802.3, its type field the payload's length.
  const type = protocol >= 0x0600 ? protocol : Math.min(payload.length, 1500);
  return frame(dst, src, type, data, header, wirelen);
}

/** The Ethernet group address of an IP multicast destination (RFC 1112, RFC 2464). */
function multicastMac(protocol: number, ip: Uint8Array): Uint8Array {
  if (protocol === 0x0800 && ip.length >= 20) return Uint8Array.of(0x01, 0x00, 0x5e, ip[17]! & 0x7f, ip[18]!, ip[19]!);
  if (protocol === 0x86dd && ip.length >= 40) return Uint8Array.of(0x33, 0x33, ip[36]!, ip[37]!, ip[38]!, ip[39]!);
  return Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0x01);
}

function frame(
  dst: Uint8Array,
  src: Uint8Array,
  type: number,
  data: Uint8Array,
  from: number,
  wirelen: number,
): { data: Uint8Array; wirelen: number } {
  const out = new Uint8Array(14 + data.length - from);
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = type >> 8;
  out[13] = type & 0xff;
  out.set(data.subarray(from), 14);
  return { data: out, wirelen: Math.max(out.length, wirelen - from + 14) };
}
