/**
 * The 5-tuple of a frame, extracted without allocation for hot paths such as connection tracking: the caller
 * owns one {@link FlowKey} and refills it per frame.
 */
import { get16, get32 } from './_bytes.ts';
import { EtherType } from './ethernet.ts';
import { IpProtocol } from './ip-protocol.ts';
import { isIpv6ExtensionHeader } from './ipv6.ts';

/** The outcome of {@link extractFlowKey}. */
export const FlowKeyStatus = {
  /** The key holds addresses, protocol and (for TCP, UDP, ICMP echo) ports. */
  OK: 0,
  /** Not IPv4/IPv6 (ARP, say) or not Ethernet II: the key is cleared. */
  NOT_IP: 1,
  /** The frame ended inside a header the key needs: the key is cleared. */
  TRUNCATED: 2,
  /** A non-first fragment: addresses and protocol are set, ports are 0 (they are in the first fragment). */
  FRAGMENT: 3,
} as const;
/** One of {@link FlowKeyStatus}. */
export type FlowKeyStatus = (typeof FlowKeyStatus)[keyof typeof FlowKeyStatus];

/**
 * A mutable 5-tuple. Addresses are four 32-bit words each (IPv4 uses word 0, the rest 0). For ICMP and ICMPv6
 * echo messages the identifier stands in for both ports, as conntrack does, so requests and replies match.
 */
export class FlowKey {
  /** 4, 6, or 0 when empty. */
  family = 0;
  protocol = 0;
  srcPort = 0;
  dstPort = 0;
  /** Outermost VLAN id, or -1 when untagged. */
  vlan = -1;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** Offset of the IP header in the frame, or -1 (not IP). Not part of the key: where to look further. */
  l3Offset = -1;
  /** Offset of the transport header, or -1 (not reached, or a non-first fragment). Not part of the key. */
  l4Offset = -1;
  /** Fragment identification (IPv4 id, IPv6 fragment header id), or -1 when not a fragment. */
  fragId = -1;
  /** Fragment offset in bytes (0 for a first fragment). */
  fragOffset = 0;
  /** More-fragments flag of a fragment. */
  moreFragments = false;

  /** Resets to the empty key. */
  clear(): void {
    this.family = 0;
    this.protocol = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.vlan = -1;
    this.src.fill(0);
    this.dst.fill(0);
    this.l3Offset = -1;
    this.l4Offset = -1;
    this.fragId = -1;
    this.fragOffset = 0;
    this.moreFragments = false;
  }

  /** Copies another key into this one. */
  copyFrom(o: FlowKey): this {
    this.family = o.family;
    this.protocol = o.protocol;
    this.srcPort = o.srcPort;
    this.dstPort = o.dstPort;
    this.vlan = o.vlan;
    this.src.set(o.src);
    this.dst.set(o.dst);
    this.l3Offset = o.l3Offset;
    this.l4Offset = o.l4Offset;
    this.fragId = o.fragId;
    this.fragOffset = o.fragOffset;
    this.moreFragments = o.moreFragments;
    return this;
  }

  /** Swaps source and destination in place (the key of the reply direction). */
  reverse(): this {
    const p = this.srcPort;
    this.srcPort = this.dstPort;
    this.dstPort = p;
    for (let i = 0; i < 4; i++) {
      const w = this.src[i];
      this.src[i] = this.dst[i];
      this.dst[i] = w;
    }
    return this;
  }

  /** True when every field equals the other key's. */
  equals(o: FlowKey): boolean {
    if (
      this.family !== o.family ||
      this.protocol !== o.protocol ||
      this.srcPort !== o.srcPort ||
      this.dstPort !== o.dstPort ||
      this.vlan !== o.vlan
    ) {
      return false;
    }
    for (let i = 0; i < 4; i++) if (this.src[i] !== o.src[i] || this.dst[i] !== o.dst[i]) return false;
    return true;
  }

  /** A 32-bit FNV-1a style hash of the fields (stable, allocation free; not keyed, so not flood resistant). */
  hash(): number {
    let h = 0x811c9dc5;
    const mix = (v: number): void => {
      h = Math.imul(h ^ (v >>> 0), 0x01000193) >>> 0;
    };
    mix(this.family | (this.protocol << 8));
    mix((this.srcPort << 16) | this.dstPort);
    mix(this.vlan);
    for (let i = 0; i < 4; i++) {
      mix(this.src[i]);
      mix(this.dst[i]);
    }
    return h;
  }

  /** The same hash for both directions of a flow (for tables keyed by connection rather than direction). */
  symmetricHash(): number {
    const a = this.hash();
    this.reverse();
    const b = this.hash();
    this.reverse();
    return (a ^ b) >>> 0;
  }

  /** A readable form for logs and tests, e.g. "6 10.0.0.1:80 > 10.0.0.2:5000". Allocates. */
  toString(): string {
    const addr = (w: Uint32Array): string =>
      this.family === 4
        ? `${w[0] >>> 24}.${(w[0] >>> 16) & 0xff}.${(w[0] >>> 8) & 0xff}.${w[0] & 0xff}`
        : Array.from(w, (x) => x.toString(16).padStart(8, '0')).join('');
    return `${this.protocol} ${addr(this.src)}:${this.srcPort} > ${addr(this.dst)}:${this.dstPort}`;
  }
}

function readPorts(b: Uint8Array, off: number, key: FlowKey, len: number): boolean {
  switch (key.protocol) {
    case IpProtocol.TCP:
    case IpProtocol.UDP:
      if (len < off + 4) return false;
      key.srcPort = get16(b, off);
      key.dstPort = get16(b, off + 2);
      return true;
    case IpProtocol.ICMP:
    case IpProtocol.ICMPV6: {
      if (len < off + 8) return false;
      const t = b[off];
      // Echo request/reply: 8/0 for ICMPv4, 128/129 for ICMPv6.
      if (t === 8 || t === 0 || t === 128 || t === 129) {
        key.srcPort = get16(b, off + 4);
        key.dstPort = key.srcPort;
      }
      return true;
    }
    default:
      return true;
  }
}

/**
 * Fills `key` from an Ethernet frame (up to two VLAN tags, IPv4 or IPv6 with extension headers) without
 * allocating. Never throws; returns a {@link FlowKeyStatus}.
 * @param length bytes of `frame` that belong to the frame (a driver's buffer is often longer than its frame)
 */
export function extractFlowKey(frame: Uint8Array, key: FlowKey, length = frame.length): FlowKeyStatus {
  const len = Math.min(length, frame.length);
  key.clear();
  if (len < 14) return FlowKeyStatus.TRUNCATED;
  let off = 12;
  let type = get16(frame, off);
  for (let tags = 0; (type === EtherType.VLAN || type === EtherType.QINQ) && tags < 2; tags++) {
    if (len < off + 6) return FlowKeyStatus.TRUNCATED;
    if (key.vlan < 0) key.vlan = get16(frame, off + 2) & 0x0fff;
    off += 4;
    type = get16(frame, off);
  }
  off += 2;
  if (type === EtherType.IPV4) {
    if (len < off + 20 || frame[off] >> 4 !== 4) {
      key.clear();
      return len < off + 20 ? FlowKeyStatus.TRUNCATED : FlowKeyStatus.NOT_IP;
    }
    const ihl = (frame[off] & 0x0f) * 4;
    key.family = 4;
    key.protocol = frame[off + 9];
    key.src[0] = get32(frame, off + 12);
    key.dst[0] = get32(frame, off + 16);
    key.l3Offset = off;
    const frag = get16(frame, off + 6);
    if ((frag & 0x3fff) !== 0) {
      key.fragId = get16(frame, off + 4);
      key.fragOffset = (frag & 0x1fff) * 8;
      key.moreFragments = (frag & 0x2000) !== 0;
    }
    if ((frag & 0x1fff) !== 0) return FlowKeyStatus.FRAGMENT;
    if (ihl < 20 || !readPorts(frame, off + ihl, key, len)) {
      key.clear();
      return FlowKeyStatus.TRUNCATED;
    }
    key.l4Offset = off + ihl;
    return FlowKeyStatus.OK;
  }
  if (type === EtherType.IPV6) {
    if (len < off + 40 || frame[off] >> 4 !== 6) {
      key.clear();
      return len < off + 40 ? FlowKeyStatus.TRUNCATED : FlowKeyStatus.NOT_IP;
    }
    key.family = 6;
    key.l3Offset = off;
    for (let i = 0; i < 4; i++) {
      key.src[i] = get32(frame, off + 8 + 4 * i);
      key.dst[i] = get32(frame, off + 24 + 4 * i);
    }
    let next = frame[off + 6];
    let p = off + 40;
    for (let n = 0; isIpv6ExtensionHeader(next) && n < 8; n++) {
      if (len < p + 8) {
        key.clear();
        return FlowKeyStatus.TRUNCATED;
      }
      if (next === IpProtocol.IPV6_FRAGMENT) {
        const fragField = get16(frame, p + 2);
        const nonFirst = (fragField & 0xfff8) !== 0;
        key.fragId = get32(frame, p + 4);
        key.fragOffset = fragField & 0xfff8;
        key.moreFragments = (fragField & 1) !== 0;
        next = frame[p];
        p += 8;
        if (nonFirst) {
          key.protocol = next;
          return FlowKeyStatus.FRAGMENT;
        }
      } else {
        const extLen = next === IpProtocol.AH ? (frame[p + 1] + 2) * 4 : (frame[p + 1] + 1) * 8;
        next = frame[p];
        p += extLen;
      }
    }
    key.protocol = next;
    if (!readPorts(frame, p, key, len)) {
      key.clear();
      return FlowKeyStatus.TRUNCATED;
    }
    key.l4Offset = p;
    return FlowKeyStatus.OK;
  }
  key.clear();
  return FlowKeyStatus.NOT_IP;
}
