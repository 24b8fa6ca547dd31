import type { NetDevice } from '../driver/net-device.ts';
import { createInThreadNic, DEFAULT_MAC } from '../nic/in-thread.ts';
import { createWorkerNic } from '../nic/worker-nic.ts';
import { NullWire } from '../wire/cable.ts';
import { TrafficGenerator } from '../wire/generator.ts';

/** Options of a benchmark run (as packages/cli's BenchmarkOptions). */
interface Options {
  readonly quick: boolean;
  readonly log: (line: string) => void;
}

const BATCH = 64;

/** A rate: per wall-clock second, and per second of CPU time this process got (the figure that a machine
 *  shared with other work does not distort; GC helper threads count too, so it is slightly pessimistic). */
interface Rate {
  readonly wall: number;
  readonly cpu: number;
}

function clock(): () => { wall: number; cpu: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    // Never zero: a quick run may fall between two ticks of the CPU clock.
    return { wall: Math.max((performance.now() - t0) / 1000, 1e-6), cpu: Math.max((c.user + c.system) / 1e6, 1e-6) };
  };
}

/** In-thread RX: the generator feeds the model, the driver lends every frame to a sink that reads one byte. */
async function rxInThread(frameSize: number, seconds: number): Promise<Rate> {
  const gen = new TrafficGenerator({ dst: DEFAULT_MAC, frameSize, pattern: 'fixed' });
  const nic = createInThreadNic({ wire: gen });
  const dev: NetDevice = nic.driver;
  dev.start();
  let sum = 0;
  const sink = (f: Uint8Array, n: number) => {
    sum += f[n - 1];
  };
  let frames = 0;
  const deadline = performance.now() + seconds * 1000;
  const elapsed = clock();
  while (performance.now() < deadline) {
    for (let i = 0; i < 64; i++) {
      gen.pump(BATCH);
      frames += dev.receive(sink, BATCH);
    }
  }
  const t = elapsed();
  if (sum < 0) throw new Error('unreachable');
  await nic.close();
  return { wall: frames / t.wall, cpu: frames / t.cpu };
}

/** In-thread TX: the driver copies a frame into each TX buffer, commits a batch with one doorbell. */
async function txInThread(frameSize: number, seconds: number): Promise<Rate> {
  const wire = new NullWire();
  const nic = createInThreadNic({ wire });
  const dev: NetDevice = nic.driver;
  dev.start();
  const template = new Uint8Array(frameSize);
  template.set(DEFAULT_MAC, 0);
  template.set(DEFAULT_MAC, 6);
  const deadline = performance.now() + seconds * 1000;
  const elapsed = clock();
  const noop = () => {};
  let frames = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 64; i++) {
      for (let k = 0; k < BATCH; k++) {
        const buf = dev.txAcquire();
        if (!buf) break;
        buf.set(template);
        dev.txSubmit(frameSize);
      }
      frames += dev.txCommit();
      dev.receive(noop, BATCH); // TX completion
    }
  }
  const t = elapsed();
  if (frames !== wire.frames) throw new Error(`tx bench: committed ${frames}, wire saw ${wire.frames}`);
  await nic.close();
  return { wall: wire.frames / t.wall, cpu: wire.frames / t.cpu };
}

/**
 * RX with the model in a worker thread: the worker's generator sends as fast as flow control lets it (it
 * pauses while the RX ring is full), the driver polls here; counts frames lent to the sink. On a machine
 * with fewer free cores than threads this measures the scheduler as much as the code.
 */
async function rxWorker(frameSize: number, seconds: number): Promise<number> {
  const nic = await createWorkerNic({ wire: `gen:${frameSize}::fixed`, rxRingSize: 1024 });
  try {
    const dev: NetDevice = nic.driver;
    dev.start();
    let sum = 0;
    const sink = (f: Uint8Array, n: number) => {
      sum += f[n - 1];
    };
    nic.setPumping('flow');
    let frames = 0;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    let now = t0;
    while (now < deadline) {
      for (let i = 0; i < 64; i++) frames += dev.receive(sink, BATCH);
      now = performance.now();
    }
    nic.setPumping(false);
    if (sum < 0) throw new Error('unreachable');
    return frames / ((now - t0) / 1000);
  } finally {
    await nic.close();
  }
}

/** TX with the model in a worker thread: batches of 64 with one doorbell, completions reclaimed here. */
async function txWorker(frameSize: number, seconds: number): Promise<number> {
  const nic = await createWorkerNic({ wire: 'null' });
  try {
    const dev: NetDevice = nic.driver;
    dev.start();
    const template = new Uint8Array(frameSize);
    template.set(DEFAULT_MAC, 0);
    template.set(DEFAULT_MAC, 6);
    const noop = () => {};
    const before = dev.counters().txPackets;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    while (performance.now() < deadline) {
      for (let k = 0; k < BATCH; k++) {
        const buf = dev.txAcquire();
        if (!buf) break;
        buf.set(template);
        dev.txSubmit(frameSize);
      }
      dev.txCommit();
      dev.receive(noop, BATCH); // TX completion
    }
    const sent = dev.counters().txPackets - before;
    return sent / Math.max((performance.now() - t0) / 1000, 1e-6);
  } finally {
    await nic.close();
  }
}

/** The median of `rounds` runs (wall and CPU rates taken from the same, median-wall, run). */
async function median<T>(rounds: number, key: (r: T) => number, once: () => Promise<T>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < rounds; i++) runs.push(await once());
  runs.sort((a, b) => key(a) - key(b));
  return runs[runs.length >> 1];
}

/**
 * `exonet bench nic`: frames per second through model and driver. Each case is the median of several short
 * rounds, so one moment when the shared machine takes the core away does not decide the figure.
 */
export async function run({ quick, log }: Options): Promise<Record<string, unknown>> {
  const seconds = quick ? 0.05 : 0.6;
  const rounds = quick ? 1 : 5;
  log(`nic: median of ${rounds} rounds of ${seconds}s per case`);
  // Warm up the JIT on each path first.
  await rxInThread(60, quick ? 0.01 : 0.5);
  await txInThread(60, quick ? 0.01 : 0.5);
  const wall = (r: Rate) => r.wall;
  const same = (r: number) => r;
  const mpps = (r: Rate) => `${(r.wall / 1e6).toFixed(2)} Mpps (${(r.cpu / 1e6).toFixed(2)} per CPU second)`;
  const rx64 = await median(rounds, wall, () => rxInThread(60, seconds));
  log(`rx 64-byte frames, in-thread: ${mpps(rx64)}`);
  const tx64 = await median(rounds, wall, () => txInThread(60, seconds));
  log(`tx 64-byte frames, in-thread: ${mpps(tx64)}`);
  const rx1500 = await median(rounds, wall, () => rxInThread(1514, seconds));
  const gbps = (r: number) => (r * 1518 * 8) / 1e9;
  log(`rx 1518-byte frames, in-thread: ${mpps(rx1500)} = ${gbps(rx1500.wall).toFixed(2)} Gb/s`);
  const tx1500 = await median(rounds, wall, () => txInThread(1514, seconds));
  log(`tx 1518-byte frames, in-thread: ${mpps(tx1500)} = ${gbps(tx1500.wall).toFixed(2)} Gb/s`);
  const workerRounds = quick ? 1 : 3;
  const rxW = await median(workerRounds, same, () => rxWorker(60, seconds));
  log(`rx 64-byte frames, model in a worker: ${(rxW / 1e6).toFixed(2)} Mpps`);
  const txW = await median(workerRounds, same, () => txWorker(60, seconds));
  log(`tx 64-byte frames, model in a worker: ${(txW / 1e6).toFixed(2)} Mpps`);
  const rxW1500 = await median(workerRounds, same, () => rxWorker(1514, seconds));
  log(`rx 1518-byte frames, model in a worker: ${(rxW1500 / 1e6).toFixed(3)} Mpps = ${gbps(rxW1500).toFixed(2)} Gb/s`);
  return {
    rx_pps_64: Math.round(rx64.wall),
    tx_pps_64: Math.round(tx64.wall),
    rx_gbps_1500: Number(gbps(rx1500.wall).toFixed(3)),
    rx_pps_64_worker: Math.round(rxW),
    tx_gbps_1500: Number(gbps(tx1500.wall).toFixed(3)),
    tx_pps_64_worker: Math.round(txW),
    rx_gbps_1500_worker: Number(gbps(rxW1500).toFixed(3)),
    rx_pps_64_per_cpu_second: Math.round(rx64.cpu),
    tx_pps_64_per_cpu_second: Math.round(tx64.cpu),
    rx_gbps_1500_per_cpu_second: Number(gbps(rx1500.cpu).toFixed(3)),
    rounds,
    seconds_per_round: seconds,
  };
}
