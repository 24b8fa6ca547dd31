/**
 * Test packets for the non-Ethernet link layers: the Ethernet corpus re-framed behind a Linux cooked (v1, v2)
 * header, or bare (raw IP), with each capture's truncation kept.
 */
import type { Frame } from '../src/bench/packets.ts';

/** The Ethernet payload behind a new link header; a frame cut short stays cut short by as much. */
export function reframe(f: Frame, header: Uint8Array): Frame {
  if (f.data.length < 14) return { data: Uint8Array.from([...header, ...f.data]), wirelen: f.wirelen + header.length };
  const data = new Uint8Array(header.length + f.data.length - 14);
  data.set(header);
  data.set(f.data.subarray(14), header.length);
  return { data, wirelen: Math.max(data.length, f.wirelen - 14 + header.length) };
}

/** The frame's EtherType, or for variant 1 the 802.2 protocol (4) that SLL uses for LLC frames. */
function protocolOf(eth: Uint8Array, variant: number): number {
  if (variant === 1) return 4;
  return eth.length >= 14 ? (eth[12]! << 8) | eth[13]! : 0x0800;
}

export function sllHeader(eth: Uint8Array, variant: number): Uint8Array {
  const h = new Uint8Array(16);
  h[1] = variant === 2 ? 4 : 0; // packet type: outgoing in one variant
  h[3] = 1; // ARPHRD_ETHER
  h[5] = 6;
  h.set(eth.subarray(6, 12), 6);
  const p = protocolOf(eth, variant);
  h[14] = p >> 8;
  h[15] = p & 0xff;
  return h;
}

export function sll2Header(eth: Uint8Array, variant: number): Uint8Array {
  const h = new Uint8Array(20);
  const p = protocolOf(eth, variant);
  h[0] = p >> 8;
  h[1] = p & 0xff;
  h[7] = 2; // interface index
  h[9] = 1; // ARPHRD_ETHER
  h[10] = variant === 2 ? 4 : 0;
  h[11] = 6;
  h.set(eth.subarray(6, 12), 12);
  return h;
}
