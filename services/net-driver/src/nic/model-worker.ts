/**
 * Entry point of the model worker thread: an RTL8169 model running concurrently with its driver, as the chip
 * does. It applies posted register writes, pumps frame sources on its wire, serves its wire's I/O and sleeps
 * on the doorbell when idle. Started by worker-nic.ts through @exonet/ipc's spawnWorker.
 * @module
 */
import { workerData } from 'node:worker_threads';
import { openWire } from '../wire/spec.ts';
import type { FrameSource, Wire } from '../wire/wire.ts';
import type { AccessWidth } from './mmio.ts';
import { PhysicalMemory } from './physical-memory.ts';
import { Rtl8169Model } from './rtl8169.ts';
import { waitAsync } from './wait-async.ts';
import {
  assertSharedInterrupt,
  CTL,
  type ModelWorkerData,
  POSTED_BASE,
  POSTED_CAPACITY,
  PUMP_FLOW,
  STAT_FIELDS,
} from './worker-bus.ts';

/** Frames a source is pumped for per round, between checks of the posted-write ring. */
const PUMP_BURST = 16;

async function main(data: ModelWorkerData): Promise<void> {
  const ctl = new Int32Array(data.control);
  const stats = new Float64Array(data.stats);
  const memory = new PhysicalMemory(data.memory);
  const model = new Rtl8169Model({
    memory,
    mac: Uint8Array.from(data.mac),
    registers: data.registers,
    onInterrupt: () => assertSharedInterrupt(ctl),
    writeFcs: data.writeFcs,
  });
  let wire: Wire;
  try {
    wire = await openWire(data.wire, { mac: Uint8Array.from(data.mac) });
  } catch (err) {
    Atomics.store(ctl, CTL.ready, -1);
    Atomics.notify(ctl, CTL.tail);
    throw err;
  }
  model.attachWire(wire);
  const source = 'pump' in wire ? (wire as unknown as FrameSource) : undefined;
  // A wire with sockets needs this thread's event loop; a pure source or sink can sleep in Atomics.wait.
  const needsEventLoop = data.wire.startsWith('udp:');

  let tail = Atomics.load(ctl, CTL.tail);
  const drain = (): boolean => {
    const head = Atomics.load(ctl, CTL.head);
    if (head === tail) return false;
    while (tail !== head) {
      const i = POSTED_BASE + (tail & (POSTED_CAPACITY - 1)) * 2;
      const op = ctl[i];
      try {
        model.mmioWrite(op & 0xffff, (op >>> 16) as AccessWidth, ctl[i + 1]);
      } catch {
        // The driver side checks offsets before posting; a bad entry is a bus error and is dropped.
      }
      tail = (tail + 1) | 0;
    }
    Atomics.store(ctl, CTL.tail, tail);
    Atomics.notify(ctl, CTL.tail);
    return true;
  };
  const publish = () => {
    for (let i = 0; i < STAT_FIELDS.length; i++) stats[i] = model.stats[STAT_FIELDS[i]];
  };

  Atomics.store(ctl, CTL.ready, 1);
  Atomics.notify(ctl, CTL.tail);
  let rounds = 0;
  try {
    while (!Atomics.load(ctl, CTL.stop)) {
      let worked = drain();
      const link = Atomics.load(ctl, CTL.link);
      if (link) {
        model.setCarrier(link === 1);
        Atomics.store(ctl, CTL.link, 0);
        worked = true;
      }
      const pumping = Atomics.load(ctl, CTL.pump);
      if (source && !source.done && pumping) {
        // PUMP_FLOW: the far end honours flow control and waits while the ring is full; the worker gives the
        // CPU to the driver thread meanwhile (two threads may share one core).
        if (pumping === PUMP_FLOW) {
          // One frame at a time, each only when a descriptor is free: nothing is missed.
          let n = 0;
          while (n < PUMP_BURST && model.rxReady && source.pump(1) > 0) n++;
          if (n === 0 && !source.done) Atomics.wait(ctl, CTL.doorbell, Atomics.load(ctl, CTL.doorbell), 0.05);
          worked = true;
        } else if (source.pump(PUMP_BURST) > 0) worked = true;
      }
      if ((++rounds & 255) === 0 || !worked) publish();
      if (!worked) {
        const bell = Atomics.load(ctl, CTL.doorbell);
        if (drain()) continue;
        if (needsEventLoop) await waitAsync(ctl, CTL.doorbell, bell, 20).value;
        else Atomics.wait(ctl, CTL.doorbell, bell, 20);
      } else if (needsEventLoop && (rounds & 63) === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    publish();
    model.attachWire(undefined);
    await wire.close();
  }
}

main(workerData as ModelWorkerData).catch((err: unknown) => {
  Atomics.store(new Int32Array((workerData as ModelWorkerData).control), CTL.ready, -1);
  throw err;
});
