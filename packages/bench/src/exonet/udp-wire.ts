import { crc32 } from 'node:zlib';
import type { FrameSource, Wire, WirePort } from '@exonet/net-driver';

/** Length of every benchmark frame without its FCS: Ethernet 14 + IPv4 20 + UDP 8 + payload 18 = 60 bytes. */
export const FRAME_LENGTH = 60;
/** UDP payload bytes of a benchmark frame. */
export const PAYLOAD_LENGTH = FRAME_LENGTH - 42;
const SRC_IP = [10, 77, 0, 1];
const DST_IP = [10, 77, 0, 2];
const SRC_PORT = 40_000;

/** Ones' complement sum of big-endian 16-bit words of `b[start, end)` (even length), folded to 16 bits. */
function sum16(b: Uint8Array, start: number, end: number, sum = 0): number {
  for (let i = start; i < end; i += 2) sum += (b[i] << 8) | b[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * One 64-byte UDP frame (60 bytes without FCS) from 10.77.0.1:40000 to 10.77.0.2:`port`, with a correct IPv4
 * header checksum and UDP checksum; the payload carries the port so a receiver can tell frames apart.
 */
export function udpFrame(dstMac: Uint8Array, port: number): Uint8Array {
  const f = new Uint8Array(FRAME_LENGTH);
  f.set(dstMac.subarray(0, 6), 0);
  f.set([0x02, 0, 0, 0, 0, 0xfe, 0x08, 0x00], 6);
  const ipLength = FRAME_LENGTH - 14;
  f.set([0x45, 0, ipLength >> 8, ipLength & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, ...SRC_IP, ...DST_IP], 14);
  const ipSum = ~sum16(f, 14, 34) & 0xffff;
  f[24] = ipSum >> 8;
  f[25] = ipSum & 0xff;
  const udpLength = ipLength - 20;
  f.set([SRC_PORT >> 8, SRC_PORT & 0xff, port >> 8, port & 0xff, udpLength >> 8, udpLength & 0xff, 0, 0], 34);
  for (let i = 42; i < FRAME_LENGTH; i++) f[i] = (port + i) & 0xff;
  const udpSum = ~sum16(f, 34, FRAME_LENGTH, pseudoHeader(udpLength)) & 0xffff;
  // 0 means "no checksum" in UDP over IPv4; a computed 0 is sent as 0xffff (RFC 768).
  const sent = udpSum === 0 ? 0xffff : udpSum;
  f[40] = sent >> 8;
  f[41] = sent & 0xff;
  return f;
}

function pseudoHeader(udpLength: number): number {
  return (
    ((SRC_IP[0] << 8) | SRC_IP[1]) +
    ((SRC_IP[2] << 8) | SRC_IP[3]) +
    ((DST_IP[0] << 8) | DST_IP[1]) +
    ((DST_IP[2] << 8) | DST_IP[3]) +
    17 +
    udpLength
  );
}

/**
 * What a receiving task does with each frame: checks that it is IPv4/UDP, that the IPv4 header checksum and
 * the UDP checksum (with its pseudo-header, taken from the frame) hold, and returns the payload's length, or
 * -1 when anything is wrong. Reads the frame in place, `length` bytes from `at` in `b`: nothing is allocated.
 */
export function readUdpPayload(b: Uint8Array, length: number, at = 0): number {
  if (length < 42 || b[at + 12] !== 0x08 || b[at + 13] !== 0x00 || b[at + 14] !== 0x45 || b[at + 23] !== 17) {
    return -1;
  }
  if (sum16(b, at + 14, at + 34) !== 0xffff) return -1;
  const udpLength = (b[at + 38] << 8) | b[at + 39];
  if (udpLength < 8 || 34 + udpLength > length) return -1;
  if ((b[at + 40] | b[at + 41]) !== 0) {
    let sum = 17 + udpLength;
    for (let i = at + 26; i < at + 34; i += 2) sum += (b[i] << 8) | b[i + 1];
    // An odd length would need a zero pad byte; the benchmark's datagrams are even, so sum up to the even end.
    let end = at + 34 + udpLength;
    if (udpLength & 1) {
      sum += b[end - 1] << 8;
      end--;
    }
    if (sum16(b, at + 34, end, sum) !== 0xffff) return -1;
  }
  return udpLength - 8;
}

/**
 * The wire side of the exonet e2e benchmark: a wire whose far end sends prebuilt UDP frames round-robin to
 * `ports`, as fast as it is pumped, straight into the RTL8169 model (the model DMAs them into its RX ring).
 * The FCS of each frame is computed once, as the sending MAC would have.
 */
export class UdpFanoutWire implements Wire, FrameSource {
  readonly description: string;
  readonly done = false;
  /** Frames handed to the NIC. */
  produced = 0;
  #port: WirePort | undefined;
  readonly #frames: Uint8Array[];
  readonly #fcs: Uint32Array;
  #next = 0;

  constructor(dstMac: Uint8Array, ports: readonly number[]) {
    this.#frames = ports.map((p) => udpFrame(dstMac, p));
    this.#fcs = Uint32Array.from(this.#frames, (f) => crc32(f));
    this.description = `udp-fanout:${ports.length}`;
  }

  attach(port: WirePort): void {
    this.#port = port;
    port.setCarrier(true);
  }

  pump(max: number): number {
    const port = this.#port;
    if (port === undefined) return 0;
    const frames = this.#frames;
    const fcs = this.#fcs;
    let next = this.#next;
    for (let k = 0; k < max; k++) {
      port.deliver(frames[next], 0, fcs[next]);
      next = next + 1 === frames.length ? 0 : next + 1;
    }
    this.#next = next;
    this.produced += max;
    return max;
  }

  transmit(_data: Uint8Array, _offset: number, _length: number): void {}

  async close(): Promise<void> {
    this.#port?.setCarrier(false);
    this.#port = undefined;
  }
}
