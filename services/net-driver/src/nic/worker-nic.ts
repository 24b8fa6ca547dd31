import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '@exonet/ipc';
import { Rtl8169Driver, type Rtl8169DriverOptions } from '../driver/r8169.ts';
import { NicError } from '../errors.ts';
import { parseWireSpec } from '../wire/spec.ts';
import { DEFAULT_MAC, memoryFor } from './in-thread.ts';
import { PhysicalMemory } from './physical-memory.ts';
import { MMIO_SIZE } from './registers.ts';
import type { ModelStats } from './rtl8169.ts';
import { waitAsync } from './wait-async.ts';
import {
  CONTROL_BYTES,
  CTL,
  type ModelWorkerData,
  PUMP_FLAT_OUT,
  PUMP_FLOW,
  SharedInterruptLine,
  STAT_FIELDS,
  WorkerMmio,
} from './worker-bus.ts';

/** Options of {@link createWorkerNic}. */
export interface WorkerNicOptions extends Omit<Rtl8169DriverOptions, 'mmio' | 'memory' | 'irq'> {
  /** Wire specification, opened inside the worker (see wire/spec.ts; a cable needs both NICs in one thread). */
  readonly wire: string;
  readonly mac?: Uint8Array;
  readonly memoryBytes?: number;
  readonly writeFcs?: boolean;
}

/** A driver in this thread and its model in a worker thread. */
export interface WorkerNic {
  readonly memory: PhysicalMemory;
  readonly driver: Rtl8169Driver;
  readonly worker: Worker;
  /** The model's statistics as last published by the worker. */
  modelStats(): ModelStats;
  /**
   * Starts or pauses frame sources (generator, pcap replay) on the model's wire. 'flow': the source honours
   * flow control (it sends a frame only when a descriptor is free: nothing is missed); true: it sends flat
   * out and frames beyond the ring are missed.
   */
  setPumping(on: boolean | 'flow'): void;
  /** Plugs or unplugs the model's PHY (LinkChg as with a cable). */
  setCarrier(up: boolean): void;
  /** Stops the driver and the worker. */
  close(): Promise<void>;
}

/**
 * Starts an RTL8169 model in a worker thread, concurrent with the driver built here on posted-write MMIO
 * and a shared interrupt line. The driver is not started; frame sources on the wire are paused.
 */
export async function createWorkerNic(options: WorkerNicOptions): Promise<WorkerNic> {
  parseWireSpec(options.wire); // fail here, with the spec's own error, rather than in the worker
  const mac = options.mac ?? DEFAULT_MAC;
  const memory = new PhysicalMemory(
    options.memoryBytes ?? memoryFor(options.rxRingSize ?? 256, options.txRingSize ?? 256, options.bufferSize ?? 2048),
  );
  const registers = new SharedArrayBuffer(MMIO_SIZE);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const stats = new SharedArrayBuffer(8 * 16);
  const ctl = new Int32Array(control);
  const data: ModelWorkerData = {
    memory: memory.buffer,
    registers,
    control,
    stats,
    mac: [...mac],
    wire: options.wire,
    writeFcs: options.writeFcs ?? true,
  };
  const worker = spawnWorker(new URL('./model-worker.ts', import.meta.url), { workerData: data });
  let failure: Error | undefined;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('error', (err) => {
    failure = err;
    Atomics.store(ctl, CTL.ready, -1);
  });
  // Wait for the model to come up (or fail) without blocking this thread's event loop.
  while (Atomics.load(ctl, CTL.ready) === 0) {
    const w = waitAsync(ctl, CTL.ready, 0, 50);
    if (w.async) await w.value;
    if (failure) break;
  }
  if (Atomics.load(ctl, CTL.ready) !== 1) {
    await worker.terminate();
    await exited;
    throw new NicError('EXO_ERR_NIC_WORKER', `the model worker failed to start: ${failure?.message ?? 'unknown'}`, {
      cause: failure,
    });
  }
  const irq = new SharedInterruptLine(control);
  const { wire: _w, mac: _m, memoryBytes: _b, writeFcs: _f, ...driverOptions } = options;
  const driver = new Rtl8169Driver({ ...driverOptions, mmio: new WorkerMmio(control, registers), memory, irq });
  const statView = new Float64Array(stats);
  let closed = false;
  return {
    memory,
    driver,
    worker,
    modelStats() {
      const out = {} as Record<string, number>;
      STAT_FIELDS.forEach((f, i) => {
        out[f] = statView[i];
      });
      return out as unknown as ModelStats;
    },
    setPumping(on) {
      Atomics.store(ctl, CTL.pump, on === 'flow' ? PUMP_FLOW : on ? PUMP_FLAT_OUT : 0);
      Atomics.add(ctl, CTL.doorbell, 1);
      Atomics.notify(ctl, CTL.doorbell);
    },
    setCarrier(up) {
      Atomics.store(ctl, CTL.link, up ? 1 : 2);
      Atomics.add(ctl, CTL.doorbell, 1);
      Atomics.notify(ctl, CTL.doorbell);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        if (!failure) driver.stop();
      } finally {
        irq.close();
        Atomics.store(ctl, CTL.stop, 1);
        Atomics.add(ctl, CTL.doorbell, 1);
        Atomics.notify(ctl, CTL.doorbell);
        const timer = setTimeout(() => void worker.terminate(), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
