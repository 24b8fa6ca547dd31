import { NicError } from '../errors.ts';
import {
  type DeviceCapabilities,
  type DeviceCounters,
  type DeviceEvent,
  type LinkState,
  type NetDevice,
  type RxSink,
  zeroCounters,
} from './net-device.ts';

/**
 * A software device whose transmitted frames come back as received frames (smoltcp's Loopback): the layers
 * above a driver run against it without any NIC. Buffers are allocated once; a full queue drops (rxMissed).
 */
export class LoopbackDevice implements NetDevice {
  readonly name = 'loopback';
  readonly capabilities: DeviceCapabilities;
  private readonly buffers: Uint8Array[];
  private readonly lengths: Int32Array;
  /** Ring of frames: [head, tail) received and not yet lent; then staged TX frames; count up, slot = n % size. */
  private head = 0;
  private tail = 0;
  private staged = 0;
  private lent = false;
  private started = false;
  private readonly stats = zeroCounters();
  private handler: ((event: DeviceEvent) => void) | null = null;
  private readonly mac: Uint8Array;

  constructor(options: { readonly queueSize?: number; readonly bufferSize?: number; readonly mac?: Uint8Array } = {}) {
    const size = options.queueSize ?? 64;
    const buf = options.bufferSize ?? 2048;
    if (!Number.isInteger(size) || size < 1 || size > 65536 || !Number.isInteger(buf) || buf < 64 || buf > 65536) {
      throw new NicError('EXO_ERR_NIC_CONFIG', `expected queueSize 1..65536 and bufferSize 64..65536`);
    }
    this.buffers = Array.from({ length: size }, () => new Uint8Array(buf));
    this.lengths = new Int32Array(size);
    this.mac = Uint8Array.from(options.mac ?? [0x02, 0, 0, 0, 0, 0x01]);
    this.capabilities = { maxFrameSize: buf, txBufferSize: buf, txQueueSize: size, rxQueueSize: size };
  }

  get running(): boolean {
    return this.started;
  }
  start(): void {
    this.started = true;
  }
  stop(): void {
    this.started = false;
    this.txAbort();
    this.head = this.tail;
  }
  macAddress(): Uint8Array {
    return Uint8Array.from(this.mac);
  }
  link(): LinkState {
    return { up: this.started, speed: this.started ? 1000 : 0, fullDuplex: this.started };
  }
  counters(): DeviceCounters {
    return { ...this.stats };
  }
  setReceiveFilter(): void {}
  setEventHandler(handler: ((event: DeviceEvent) => void) | null): void {
    this.handler = handler;
  }

  receive(sink: RxSink, budget = 64): number {
    let n = 0;
    while (n < budget && this.head !== this.tail) {
      const slot = this.head % this.buffers.length;
      this.head++;
      n++;
      this.stats.rxPackets++;
      this.stats.rxBytes += this.lengths[slot];
      sink(this.buffers[slot], this.lengths[slot]);
    }
    return n;
  }

  private free(): number {
    return this.buffers.length - (this.tail - this.head) - this.staged;
  }

  txAcquire(): Uint8Array | null {
    if (!this.started || this.free() < 1) return null;
    this.lent = true;
    return this.buffers[(this.tail + this.staged) % this.buffers.length];
  }

  txSubmit(length: number): void {
    if (!this.lent) throw new NicError('EXO_ERR_NIC_STATE', 'txSubmit without a buffer from txAcquire');
    if (!Number.isInteger(length) || length < 14 || length > this.capabilities.txBufferSize) {
      throw new NicError(
        'EXO_ERR_NIC_FRAME',
        `expected a frame length between 14 and ${this.capabilities.txBufferSize}`,
      );
    }
    this.lent = false;
    this.lengths[(this.tail + this.staged) % this.buffers.length] = length;
    this.staged++;
  }

  txDiscard(): void {
    this.lent = false;
  }

  txCommit(): number {
    const n = this.staged;
    for (let i = 0; i < n; i++) {
      this.stats.txPackets++;
      this.stats.txBytes += this.lengths[(this.tail + i) % this.buffers.length];
    }
    this.tail += n;
    this.staged = 0;
    if (n) {
      this.handler?.('tx');
      this.handler?.('rx');
    }
    return n;
  }

  txAbort(): number {
    const n = this.staged;
    this.stats.txDropped += n;
    this.staged = 0;
    this.lent = false;
    return n;
  }

  transmit(frame: Uint8Array): boolean {
    if (frame.length < 14 || frame.length > this.capabilities.txBufferSize) {
      throw new NicError('EXO_ERR_NIC_FRAME', `expected a frame of 14 to ${this.capabilities.txBufferSize} bytes`);
    }
    const buf = this.txAcquire();
    if (!buf) return false;
    buf.set(frame);
    this.txSubmit(frame.length);
    return true;
  }
}
