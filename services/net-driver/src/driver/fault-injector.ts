import { NicError } from '../errors.ts';
import type { DeviceCounters, NetDevice, RxSink } from './net-device.ts';
import { DeviceWrapper } from './wrapper.ts';

/** What {@link FaultInjectorDevice} does, each a probability in [0, 1]. */
export interface FaultOptions {
  /** Seed of the deterministic generator (the same seed gives the same faults). */
  readonly seed?: number;
  /** Received frames dropped before the sink sees them. */
  readonly rxDrop?: number;
  /** Received frames with one byte flipped (in the lent buffer) before the sink sees them. */
  readonly rxCorrupt?: number;
  /** Submitted TX frames silently discarded instead of staged. */
  readonly txDrop?: number;
  /** Submitted TX frames with one byte flipped before staging. */
  readonly txCorrupt?: number;
}

/**
 * A wrapper that loses and corrupts frames at random but reproducibly (smoltcp's FaultInjector), to test
 * that the layers above cope. Its counters add what it injected to the inner device's.
 */
export class FaultInjectorDevice extends DeviceWrapper {
  private state: number;
  private readonly o: Required<FaultOptions>;
  private lentBuffer: Uint8Array | null = null;
  /** Faults injected so far. */
  readonly injected = { rxDropped: 0, rxCorrupted: 0, txDropped: 0, txCorrupted: 0 };

  constructor(inner: NetDevice, options: FaultOptions) {
    super(inner);
    const o = { seed: 1, rxDrop: 0, rxCorrupt: 0, txDrop: 0, txCorrupt: 0, ...options };
    for (const k of ['rxDrop', 'rxCorrupt', 'txDrop', 'txCorrupt'] as const) {
      if (!(o[k] >= 0 && o[k] <= 1)) throw new NicError('EXO_ERR_NIC_CONFIG', `expected ${k} in [0, 1], got ${o[k]}`);
    }
    this.o = o;
    this.state = o.seed >>> 0 || 1;
  }

  /** xorshift32 in [0, 1). */
  private random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 2 ** 32;
  }

  private corrupt(buf: Uint8Array, length: number): void {
    const i = Math.floor(this.random() * length);
    buf[i] ^= 1 << Math.floor(this.random() * 8);
  }

  override receive(sink: RxSink, budget?: number): number {
    let passed = 0;
    this.inner.receive((frame, length, words) => {
      if (this.o.rxDrop && this.random() < this.o.rxDrop) {
        this.injected.rxDropped++;
        return;
      }
      if (this.o.rxCorrupt && this.random() < this.o.rxCorrupt) {
        this.corrupt(frame, length);
        this.injected.rxCorrupted++;
      }
      passed++;
      sink(frame, length, words);
    }, budget);
    return passed;
  }

  override txAcquire(): Uint8Array | null {
    this.lentBuffer = this.inner.txAcquire();
    return this.lentBuffer;
  }

  override txSubmit(length: number): void {
    const buf = this.lentBuffer;
    this.lentBuffer = null;
    if (this.o.txDrop && this.random() < this.o.txDrop) {
      this.injected.txDropped++;
      this.inner.txDiscard();
      return;
    }
    if (buf && this.o.txCorrupt && this.random() < this.o.txCorrupt) {
      this.corrupt(buf, length);
      this.injected.txCorrupted++;
    }
    this.inner.txSubmit(length);
  }

  override txDiscard(): void {
    this.lentBuffer = null;
    this.inner.txDiscard();
  }

  override transmit(frame: Uint8Array): boolean {
    const buf = this.txAcquire();
    if (!buf || frame.length > buf.length) {
      if (buf) this.txDiscard();
      return buf ? this.inner.transmit(frame) : false;
    }
    buf.set(frame);
    this.txSubmit(frame.length);
    return true;
  }

  override counters(): DeviceCounters {
    const c = this.inner.counters();
    c.rxErrors += this.injected.rxDropped;
    c.txDropped += this.injected.txDropped;
    return c;
  }
}
