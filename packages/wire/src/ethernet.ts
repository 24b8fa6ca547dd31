/**
 * Ethernet II frames (IEEE 802.3 clause 3 with an EtherType) and their 802.1Q / 802.1ad VLAN tags.
 */
import { get16, place, requireRoom, set16, slice } from './_bytes.ts';
import { formatMac, type MacAddress } from './address.ts';
import { fail, ok, truncated, type WireError, type WireResult } from './result.ts';

/** Well-known EtherTypes. */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
} as const;

/** Length of the untagged Ethernet header. */
export const ETHERNET_HEADER_LEN = 14;
/** Length of one VLAN tag (TPID + TCI). */
export const VLAN_TAG_LEN = 4;
/** Most VLAN tags the parser walks (QinQ and one more); deeper stacks are reported as unsupported. */
export const MAX_VLAN_TAGS = 3;

const DST = 0;
const SRC = 6;
const ETHERTYPE = 12;

/**
 * A zero-copy view of an Ethernet II header over bytes. Accessors never throw: call {@link EthernetFrame.check}
 * first; on a short buffer the accessors return zeros.
 */
export class EthernetFrame {
  constructor(readonly buffer: Uint8Array) {}

  /** Null when the buffer holds at least the 14-byte header, else the truncation error. */
  check(): WireError | null {
    return this.buffer.length < ETHERNET_HEADER_LEN
      ? truncated('ethernet', ETHERNET_HEADER_LEN, this.buffer.length)
      : null;
  }
  /** Destination address (a view into the buffer). */
  get dst(): MacAddress {
    return slice(this.buffer, DST, DST + 6);
  }
  /** Source address (a view into the buffer). */
  get src(): MacAddress {
    return slice(this.buffer, SRC, SRC + 6);
  }
  /** The outer EtherType (0x8100 when the frame carries a VLAN tag). */
  get etherType(): number {
    return get16(this.buffer, ETHERTYPE);
  }
  set dst(mac: MacAddress) {
    this.buffer.set(mac.subarray(0, 6), DST);
  }
  set src(mac: MacAddress) {
    this.buffer.set(mac.subarray(0, 6), SRC);
  }
  set etherType(v: number) {
    set16(this.buffer, ETHERTYPE, v);
  }
  /** Everything after the untagged header. */
  get payload(): Uint8Array {
    return slice(this.buffer, ETHERNET_HEADER_LEN);
  }
}

/** One 802.1Q tag: priority code point, drop-eligible indicator and VLAN id; `tpid` 0x8100 or 0x88a8. */
export interface VlanTag {
  readonly tpid: number;
  readonly pcp: number;
  readonly dei: boolean;
  readonly vid: number;
}

/** A zero-copy view of one VLAN tag's TCI plus the EtherType that follows it (4 bytes at an offset). */
export class VlanTagView {
  constructor(
    readonly buffer: Uint8Array,
    /** Offset of the tag's TCI (just after the TPID). */
    readonly offset: number,
  ) {}
  /** Null when the TCI and the inner EtherType fit. */
  check(): WireError | null {
    return this.buffer.length < this.offset + 4 ? truncated('vlan tag', this.offset + 4, this.buffer.length) : null;
  }
  /** Priority code point (3 bits). */
  get pcp(): number {
    return this.buffer[this.offset] >> 5;
  }
  /** Drop eligible indicator. */
  get dei(): boolean {
    return (this.buffer[this.offset] & 0x10) !== 0;
  }
  /** VLAN identifier (12 bits). */
  get vid(): number {
    return get16(this.buffer, this.offset) & 0x0fff;
  }
  /** The EtherType after this tag. */
  get innerEtherType(): number {
    return get16(this.buffer, this.offset + 2);
  }
}

/** The validated plain representation of an Ethernet II frame with any VLAN tags, outermost first. */
export interface EthernetRepr {
  readonly dst: MacAddress;
  readonly src: MacAddress;
  /** The EtherType of the payload (after all VLAN tags). */
  readonly etherType: number;
  readonly vlans: readonly VlanTag[];
  readonly payload: Uint8Array;
}

/** Parses an Ethernet frame, walking up to {@link MAX_VLAN_TAGS} 802.1Q/802.1ad tags. Never throws. */
export function parseEthernet(buf: Uint8Array): WireResult<EthernetRepr> {
  const view = new EthernetFrame(buf);
  const err = view.check();
  if (err) return { ok: false, error: err };
  let type = view.etherType;
  let off = ETHERNET_HEADER_LEN;
  const vlans: VlanTag[] = [];
  while (type === EtherType.VLAN || type === EtherType.QINQ) {
    if (vlans.length === MAX_VLAN_TAGS) return fail('EXO_ERR_WIRE_UNSUPPORTED', 'ethernet: more than 3 VLAN tags');
    const tag = new VlanTagView(buf, off);
    const e = tag.check();
    if (e) return { ok: false, error: e };
    vlans.push({ tpid: type, pcp: tag.pcp, dei: tag.dei, vid: tag.vid });
    type = tag.innerEtherType;
    off += VLAN_TAG_LEN;
  }
  if (type < 0x0600) {
    // Values up to 1500 are an 802.3 length, not an EtherType (IEEE 802.3 clause 3.2.6): not Ethernet II.
    return fail('EXO_ERR_WIRE_UNSUPPORTED', `ethernet: 802.3 length field ${type} instead of an EtherType`);
  }
  return ok({ dst: view.dst, src: view.src, etherType: type, vlans, payload: slice(buf, off) });
}

/** Header length (with tags) of a representation. */
export function ethernetHeaderLength(repr: Pick<EthernetRepr, 'vlans'>): number {
  return ETHERNET_HEADER_LEN + VLAN_TAG_LEN * repr.vlans.length;
}

/** Total bytes {@link emitEthernet} writes. */
export function ethernetBufferLength(repr: EthernetRepr): number {
  return ethernetHeaderLength(repr) + repr.payload.length;
}

/**
 * Writes the frame into `buf` at `offset` (header, tags, then the payload unless it already sits in place).
 * Returns the number of bytes written. Throws RangeError only when `buf` is too small (a caller bug).
 */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array, offset = 0): number {
  const hlen = ethernetHeaderLength(repr);
  const total = hlen + repr.payload.length;
  requireRoom(buf, offset, total, 'emitEthernet');
  buf.set(repr.dst.subarray(0, 6), offset + DST);
  buf.set(repr.src.subarray(0, 6), offset + SRC);
  let off = offset + ETHERTYPE;
  for (const tag of repr.vlans) {
    set16(buf, off, tag.tpid);
    set16(buf, off + 2, ((tag.pcp & 7) << 13) | (tag.dei ? 0x1000 : 0) | (tag.vid & 0x0fff));
    off += 4;
  }
  set16(buf, off, repr.etherType);
  place(buf, offset + hlen, repr.payload);
  return total;
}

/** A one-line description for logs. */
export function describeEthernet(repr: EthernetRepr): string {
  const tags = repr.vlans.map((t) => ` vlan ${t.vid}`).join('');
  return `${formatMac(repr.src)} > ${formatMac(repr.dst)}${tags} type 0x${repr.etherType.toString(16).padStart(4, '0')}`;
}
