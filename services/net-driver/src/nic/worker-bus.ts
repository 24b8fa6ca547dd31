import type { InterruptLine } from '../driver/interrupt-line.ts';
import { NicError } from '../errors.ts';
import { type AccessWidth, checkAccess, type Mmio } from './mmio.ts';
import { MMIO_SIZE } from './registers.ts';
import { waitAsync } from './wait-async.ts';

/**
 * The "PCI bus" between a driver thread and a model running in a worker thread: a control block in a
 * SharedArrayBuffer (Int32 words) holding a ring of posted register writes, the doorbell the model sleeps on,
 * and the interrupt line.
 *
 * Register writes are posted, as on PCI: the driver appends (offset, width, value) to the ring and goes on;
 * the model applies them in order. A register read first waits until every posted write has been applied
 * (PCI: a read flushes posted writes), then reads the register window, which the model keeps current with
 * Atomics. So `write8(ChipCmd, CmdReset)` followed by polling `read8(ChipCmd)` behaves as on the chip.
 * @module
 */

/** Word indices in the control block. */
export const CTL = {
  /** Posted writes produced (driver). */
  head: 0,
  /** Posted writes applied (model); the driver waits on it to flush. */
  tail: 1,
  /** Bumped after posting; the idle model waits on it. */
  doorbell: 2,
  /** 1 while the interrupt line is asserted and the driver thread has not taken it. */
  irq: 3,
  /** 1 asks the model worker to exit. */
  stop: 4,
  /** 1 once the model is up; -1 if the worker failed. */
  ready: 5,
  /** Carrier request from the host: 0 none, 1 up, 2 down (the model applies it and resets it to 0). */
  link: 6,
  /** Frame sources on the model's wire: 0 paused, PUMP_FLAT_OUT, or PUMP_FLOW (flow-controlled). */
  pump: 7,
} as const;

/** Pump mode: the source sends regardless of the receiver (frames beyond the ring are missed). */
export const PUMP_FLAT_OUT = 1;
/** Pump mode: the source honours 802.3x flow control and pauses while the NIC has no free descriptor. */
export const PUMP_FLOW = 2;

/** Posted-write ring: capacity (entries of two words, a power of two) and first word. */
export const POSTED_CAPACITY = 1024;
export const POSTED_BASE = 64;
/** Control block size in bytes. */
export const CONTROL_BYTES = (POSTED_BASE + POSTED_CAPACITY * 2) * 4;

/** How long a register read waits for the model before declaring it dead. */
const FLUSH_TIMEOUT_MS = 30_000;

/** Driver-side MMIO to a model in another thread. */
export class WorkerMmio implements Mmio {
  private readonly ctl: Int32Array;
  private readonly r8: Uint8Array;
  private readonly r16: Uint16Array;
  private readonly r32: Uint32Array;
  private head: number;

  constructor(control: SharedArrayBuffer, registers: SharedArrayBuffer) {
    if (control.byteLength !== CONTROL_BYTES || registers.byteLength !== MMIO_SIZE) {
      throw new NicError('EXO_ERR_NIC_CONFIG', 'control block or register window of the wrong size');
    }
    this.ctl = new Int32Array(control);
    this.r8 = new Uint8Array(registers);
    this.r16 = new Uint16Array(registers);
    this.r32 = new Uint32Array(registers);
    this.head = Atomics.load(this.ctl, CTL.head);
  }

  private post(offset: number, width: AccessWidth, value: number): void {
    checkAccess(offset, width);
    const ctl = this.ctl;
    const head = this.head;
    let tail = Atomics.load(ctl, CTL.tail);
    // head and tail are Int32 counters that wrap; their difference does not.
    while (((head - tail) | 0) >= POSTED_CAPACITY) {
      this.checkAlive();
      Atomics.wait(ctl, CTL.tail, tail, 10);
      tail = Atomics.load(ctl, CTL.tail);
    }
    const i = POSTED_BASE + (head & (POSTED_CAPACITY - 1)) * 2;
    ctl[i] = offset | (width << 16);
    ctl[i + 1] = value | 0;
    this.head = (head + 1) | 0;
    Atomics.store(ctl, CTL.head, this.head);
    Atomics.add(ctl, CTL.doorbell, 1);
    Atomics.notify(ctl, CTL.doorbell);
  }

  /** Waits until the model has applied every posted write. */
  flush(): void {
    const ctl = this.ctl;
    let tail = Atomics.load(ctl, CTL.tail);
    if (tail === this.head) return;
    const deadline = Date.now() + FLUSH_TIMEOUT_MS;
    while (tail !== this.head) {
      this.checkAlive();
      if (Date.now() > deadline) throw new NicError('EXO_ERR_NIC_WORKER', 'the model worker stopped responding');
      Atomics.wait(ctl, CTL.tail, tail, 10);
      tail = Atomics.load(ctl, CTL.tail);
    }
  }

  private checkAlive(): void {
    if (Atomics.load(this.ctl, CTL.ready) < 0 || Atomics.load(this.ctl, CTL.stop)) {
      throw new NicError('EXO_ERR_NIC_WORKER', 'the model worker is not running');
    }
  }

  read8(offset: number): number {
    checkAccess(offset, 1);
    this.flush();
    return Atomics.load(this.r8, offset);
  }
  read16(offset: number): number {
    checkAccess(offset, 2);
    this.flush();
    return Atomics.load(this.r16, offset >> 1);
  }
  read32(offset: number): number {
    checkAccess(offset, 4);
    this.flush();
    return Atomics.load(this.r32, offset >> 2);
  }
  write8(offset: number, value: number): void {
    this.post(offset, 1, value);
  }
  write16(offset: number, value: number): void {
    this.post(offset, 2, value);
  }
  write32(offset: number, value: number): void {
    this.post(offset, 4, value);
  }
}

/**
 * The driver thread's end of the interrupt line from a model worker: it waits (without blocking the event
 * loop) for the model to assert the line, takes the interrupt (clears the word, so a later event asserts it
 * again) and runs the handler.
 */
export class SharedInterruptLine implements InterruptLine {
  private readonly ctl: Int32Array;
  private handler: (() => void) | null = null;
  private closed = false;
  private running = false;

  constructor(control: SharedArrayBuffer) {
    this.ctl = new Int32Array(control);
  }

  setHandler(handler: (() => void) | null): void {
    this.handler = handler;
    if (handler && !this.running && !this.closed) {
      this.running = true;
      void this.loop();
    }
  }

  private async loop(): Promise<void> {
    const ctl = this.ctl;
    while (!this.closed) {
      const w = waitAsync(ctl, CTL.irq, 0);
      if (w.async) await w.value;
      else await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) break;
      if (Atomics.load(ctl, CTL.irq) === 0) continue;
      Atomics.store(ctl, CTL.irq, 0);
      try {
        this.handler?.();
      } catch {
        // The device is gone or failed; the next register access reports it to the caller.
      }
    }
    this.running = false;
  }

  close(): void {
    this.closed = true;
    this.handler = null;
    // Wake the waiting loop so it ends (and holds nothing).
    Atomics.notify(this.ctl, CTL.irq);
  }
}

/** The model worker's end of the interrupt line: assert (edge once until the driver takes it). */
export function assertSharedInterrupt(ctl: Int32Array): void {
  if (Atomics.compareExchange(ctl, CTL.irq, 0, 1) === 0) Atomics.notify(ctl, CTL.irq);
}

/** What the host passes in workerData. */
export interface ModelWorkerData {
  readonly memory: SharedArrayBuffer;
  readonly registers: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  /** Model statistics published for the host (Float64, ModelStats field order). */
  readonly stats: SharedArrayBuffer;
  readonly mac: readonly number[];
  readonly wire: string;
  readonly writeFcs: boolean;
}

/** Order of ModelStats fields in the shared stats block. */
export const STAT_FIELDS = [
  'rxFrames',
  'rxFiltered',
  'rxDisabled',
  'rxErrorsDropped',
  'rxOversize',
  'rxNoDescriptor',
  'txFrames',
  'txErrors',
  'dmaErrors',
] as const;
