import { WireError } from '../errors.ts';
import { crc32 } from '../nic/crc32.ts';
import type { FrameSource, Wire, WirePort } from './wire.ts';

/** Options of {@link TrafficGenerator}. */
export interface TrafficGeneratorOptions {
  /** Destination MAC of the generated frames. */
  readonly dst: Uint8Array;
  /** Source MAC (default 02:00:00:00:00:fe). */
  readonly src?: Uint8Array;
  /** Frame length without FCS, 14..16379 (default 60: a 64-byte frame on the wire). */
  readonly frameSize?: number;
  /** Frames to produce (default: unlimited). */
  readonly count?: number;
  /**
   * 'sequenced' (default): bytes 14..17 carry a sequence number (u32 BE) and every later byte i is
   * (seq + i) & 0xff, so a receiver detects loss, duplication, reordering and torn frames ({@link checkFrame}).
   * 'fixed': the same frame every time (cheapest; benchmarks).
   */
  readonly pattern?: 'sequenced' | 'fixed';
}

/** EtherType of generated frames: 0x88B5, IEEE 802 local experimental. */
export const GENERATOR_ETHERTYPE = 0x88b5;

/**
 * A traffic generator for tests and benchmarks: a wire whose far end produces frames as fast as it is pumped
 * and swallows whatever the NIC sends (counting it).
 */
export class TrafficGenerator implements Wire, FrameSource {
  readonly description: string;
  /** Frames delivered so far (= the next sequence number). */
  produced = 0;
  /** Frames the NIC sent into the generator. */
  received = 0;
  private port: WirePort | undefined;
  private readonly frame: Uint8Array;
  private readonly count: number;
  private readonly sequenced: boolean;
  /** FCS of the fixed frame: the far end computed it once, as a real sender's MAC would per frame. */
  private readonly fcs: number;

  constructor(options: TrafficGeneratorOptions) {
    const size = options.frameSize ?? 60;
    if (!Number.isInteger(size) || size < 18 || size > 16379) {
      throw new WireError('EXO_ERR_WIRE_SPEC', `expected a generator frame size between 18 and 16379, got ${size}`);
    }
    const count = options.count ?? Number.POSITIVE_INFINITY;
    if (!(count >= 0)) throw new WireError('EXO_ERR_WIRE_SPEC', `expected a non-negative frame count, got ${count}`);
    this.count = count;
    this.sequenced = (options.pattern ?? 'sequenced') === 'sequenced';
    this.frame = new Uint8Array(size);
    this.frame.set(options.dst.subarray(0, 6), 0);
    this.frame.set(options.src ?? Uint8Array.of(0x02, 0, 0, 0, 0, 0xfe), 6);
    this.frame[12] = GENERATOR_ETHERTYPE >> 8;
    this.frame[13] = GENERATOR_ETHERTYPE & 0xff;
    for (let i = 18; i < size; i++) this.frame[i] = i & 0xff;
    this.fcs = crc32(this.frame);
    this.description = `gen:${size}`;
  }

  get done(): boolean {
    return this.produced >= this.count;
  }

  attach(port: WirePort): void {
    this.port = port;
    port.setCarrier(true);
  }

  pump(max: number): number {
    const port = this.port;
    if (!port) return 0;
    const f = this.frame;
    const n = Math.min(max, this.count - this.produced);
    const size = f.length;
    for (let k = 0; k < n; k++) {
      if (this.sequenced) {
        const seq = this.produced;
        f[14] = seq >>> 24;
        f[15] = seq >>> 16;
        f[16] = seq >>> 8;
        f[17] = seq;
        for (let i = 18; i < size; i++) f[i] = seq + i;
      }
      this.produced++;
      if (this.sequenced) port.deliver(f);
      else port.deliver(f, 0, this.fcs);
    }
    return n;
  }

  transmit(_data: Uint8Array, _offset: number, _length: number): void {
    this.received++;
  }

  async close(): Promise<void> {
    this.port?.setCarrier(false);
    this.port = undefined;
  }
}

/**
 * Checks a frame made by a sequenced generator (or built the same way).
 * @returns its sequence number, or -1 when the frame is torn (a byte does not match its sequence number)
 */
export function checkFrame(frame: Uint8Array, length: number): number {
  if (length < 18) return -1;
  const seq = ((frame[14] << 24) | (frame[15] << 16) | (frame[16] << 8) | frame[17]) >>> 0;
  for (let i = 18; i < length; i++) if (frame[i] !== ((seq + i) & 0xff)) return -1;
  return seq;
}

/** Writes a sequenced frame (the same layout as the generator's) into `buf`; returns its length. */
export function writeSequencedFrame(
  buf: Uint8Array,
  dst: Uint8Array,
  src: Uint8Array,
  seq: number,
  length: number,
): number {
  buf.set(dst.subarray(0, 6), 0);
  buf.set(src.subarray(0, 6), 6);
  buf[12] = GENERATOR_ETHERTYPE >> 8;
  buf[13] = GENERATOR_ETHERTYPE & 0xff;
  buf[14] = seq >>> 24;
  buf[15] = seq >>> 16;
  buf[16] = seq >>> 8;
  buf[17] = seq;
  for (let i = 18; i < length; i++) buf[i] = seq + i;
  return length;
}
