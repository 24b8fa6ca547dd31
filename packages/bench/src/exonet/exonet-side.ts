import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { compileExpression, encodeProgram } from '@exonet/bpf';
import {
  b64urlEncode,
  createKeySet,
  type GrantClaims,
  generateHolderKey,
  generateSigningKey,
  jwksDocument,
  jwkThumbprint,
  publicJwk,
  RevocationSet,
  signGrant,
} from '@exonet/grant';
import { createChannelGroup, type DriverChannelGroup, spawnWorker } from '@exonet/ipc';
import { createInThreadNic, DEFAULT_MAC, ExokernelCore } from '@exonet/net-driver';
import type { TaskWorkerData, TaskWorkerMessage } from './task-worker.ts';
import { UdpFanoutWire } from './udp-wire.ts';

/** Frames of each worker's shared receive queue: a few bursts of the wire, in flight at once. */
const DEFAULT_SHARED_RX_FRAMES = 8192;

/** Busy polling of the tasks' pollers after work, µs. */
const DEFAULT_BUSY_POLL_MICROS = 500;

/** Options of an exonet side. */
export interface ExonetSideOptions {
  readonly receivers: number;
  /** First UDP port; receiver i listens on basePort + i. */
  readonly basePort?: number;
  /**
   * Worker threads hosting the tasks. Default: one per core the driver's thread leaves (availableParallelism
   * - 1, at least 1, at most one per receiver): more threads than cores only take turns on them.
   */
  readonly workers?: number;
  /**
   * Frames the wire offers and the core polls per turn (default 1024, the largest RX ring). The core scans
   * every task's control and TX rings once per poll, so a large budget spreads that scan over more frames.
   */
  readonly burst?: number;
  /**
   * Whether the tasks of one worker share a channel group (one doorbell and poller for all of them, as any
   * process hosting many tasks should). Default true; false gives each task its own wait loop.
   */
  readonly groups?: boolean;
  /** Frames in each task's packet pool (default: enough for 4 bursts spread over the tasks, at least 64). */
  readonly frameCount?: number;
  /**
   * Frames of each group's shared receive queue (@exonet/ipc GroupOptions.sharedRx): the tasks of a worker
   * then receive through one queue instead of each its own ring. Default 8192; 0 gives every task its own.
   */
  readonly sharedRxFrames?: number;
  /**
   * How long each worker's poller busy-polls after work, µs (DriverConnection's busyPollMicros). Default
   * 500: a publish comes every few hundred µs under load, so the poller mostly stays awake and the driver
   * pays few wake-ups; the CPU it spends looking counts in exonet's CPU per datagram. 0 sleeps at once.
   * Same-run A/B (packages/bench/scripts/e2e-ab.ts, 8 interleaved rounds, three runs) could not tell 0, 150,
   * 300, 600 and 1000 µs apart on this shared machine (medians 2.2-2.9M pps, in no consistent order).
   */
  readonly busyPollMicros?: number;
}

/** One measurement of the exonet side. */
export interface ExonetRunResult {
  readonly receivers: number;
  readonly workers: number;
  /** Frames the wire handed to the NIC model during the measured window. */
  readonly offered: number;
  /** Datagrams the tasks read, checksums correct, during the measured window. */
  readonly received: number;
  /** Frames that reached a task with a wrong checksum (must be 0). */
  readonly corrupt: number;
  readonly seconds: number;
  /** Datagrams read by the tasks per second. */
  readonly pps: number;
  /** Frames the NIC model missed (its RX ring was full) and frames dropped at full task queues. */
  readonly nicMissed: number;
  readonly taskQueueFull: number;
  /** CPU seconds the whole process (driver and task threads) used in the window, per datagram read, in µs. */
  readonly cpuMicrosPerDatagram: number;
  /**
   * The same for the driver's thread alone (wire, NIC model, driver, core), from /proc (10 ms ticks; NaN
   * where /proc is missing). The rest of the process's CPU is the tasks' threads.
   */
  readonly driverCpuMicrosPerDatagram: number;
}

/** CPU seconds (user + system) the thread `tid` of this process used so far, from /proc; NaN if unreadable. */
function threadCpuSeconds(tid: number): number {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')': utime and stime are 14, 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

const ISSUER = 'exonet-bench';
const DRIVER_ID = 'bench-driver';
/** Frames the wire offers and the core polls per turn: one RX ring's worth keeps the ring from overflowing. */
const DEFAULT_BURST = 1024;

/** An exonet side set up for one number of receivers: measure it as often as wanted, then close it. */
export interface ExonetSide {
  /** Drives traffic for `warmupSeconds`, then measures for `seconds`. */
  measure(seconds: number, warmupSeconds?: number): Promise<ExonetRunResult>;
  /** The exokernel core (to change its tunables between measurements). */
  readonly core: ExokernelCore;
  /** Changes the tasks' busy polling between measurements, µs. */
  setBusyPoll(micros: number): void;
  /** Ends the task workers and the driver. */
  close(): Promise<void>;
}

/**
 * Sets up the exonet side. The driver's thread (this one) holds the wire, the RTL8169 model, the r8169
 * driver and the exokernel core; `receivers` tasks, each a DriverConnection with its own signed grant
 * `udp dst port P`, run in worker threads (several tasks per worker). Frames go wire -> model (DMA into
 * the RX ring) -> driver -> core (demux index, the task's compiled filter, copy into the task's RX queue) ->
 * task (client library, both checksums checked).
 */
export async function openExonetSide(options: ExonetSideOptions): Promise<ExonetSide> {
  const n = options.receivers;
  const basePort = options.basePort ?? 20_000;
  const workerCount = Math.max(1, Math.min(options.workers ?? availableParallelism() - 1, n));
  const ports = Array.from({ length: n }, (_, i) => basePort + i);
  const wire = new UdpFanoutWire(DEFAULT_MAC, ports);
  const BURST = options.burst ?? DEFAULT_BURST;
  const nic = createInThreadNic({ wire, rxRingSize: Math.min(1024, Math.max(256, BURST)) });
  // Each task's packet pool: deep enough that one burst for one task fits, small enough that 1,000 tasks
  // stay within memory (frames are 2 KiB).
  const frameCount = options.frameCount ?? Math.max(64, Math.min(2048, 2 ** Math.ceil(Math.log2((4 * BURST) / n))));
  nic.driver.start();
  const issuer = generateSigningKey();
  const ks = createKeySet(jwksDocument([issuer]));
  if (!ks.ok) throw new Error(ks.reason);
  const core = new ExokernelCore({
    driverId: DRIVER_ID,
    device: nic.driver,
    keys: () => ks.keySet,
    revocations: new RevocationSet(),
    issuer: ISSUER,
    maxTasks: n + 16,
  });
  // Grants: `udp dst port P` compiled once and patched per port (the compiler's output differs only there).
  const template = compileExpression(`udp dst port ${basePort}`);
  // The tasks of worker w are tasks [w * per, (w + 1) * per): one channel group per worker.
  const per = Math.ceil(n / workerCount);
  const sharedRxFrames = options.sharedRxFrames ?? DEFAULT_SHARED_RX_FRAMES;
  const groups: DriverChannelGroup[] =
    options.groups === false
      ? []
      : Array.from({ length: workerCount }, () =>
          createChannelGroup({
            transport: 'thread',
            capacity: per,
            sharedRx: sharedRxFrames > 0 ? { frameCount: sharedRxFrames } : undefined,
          }),
        );
  const now = Math.floor(Date.now() / 1000);
  const tasks = ports.map((p, i) => {
    const { handle } = core.attach({ principal: `bench-${i}`, frameCount, group: groups[Math.floor(i / per)] });
    const key = generateHolderKey();
    const program = template.map((insn) => (insn.k === basePort ? { ...insn, k: p } : insn));
    const claims: GrantClaims = {
      iss: ISSUER,
      sub: `bench-${i}`,
      aud: DRIVER_ID,
      iat: now - 1,
      nbf: now - 1,
      exp: now + 600,
      jti: `bench-${i}-${p}`,
      cnf: { jkt: jwkThumbprint(publicJwk(key.publicKey)) },
      dir: 'rx',
      layer: 'task',
      bpf: b64urlEncode(encodeProgram(program)),
      excl: false,
      rule: 'bench',
    };
    return { handle, key, grant: signGrant(claims, issuer) };
  });
  const counters = new SharedArrayBuffer(4 * 4 * workerCount);
  const count = new Int32Array(counters);
  const workers: Worker[] = [];
  let stopPolling = false;
  // The core must answer the tasks' HELLO, PROVE and INSTALL while they attach: poll between event-loop turns.
  const background = (async () => {
    while (!stopPolling) {
      core.poll(BURST);
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  const close = async (): Promise<void> => {
    stopPolling = true;
    await background;
    // The tasks have nothing left to say: end their threads; core.close() then detaches their sessions.
    await Promise.all(workers.map((w) => w.terminate()));
    core.close();
    for (const g of groups) g.close();
    await nic.close();
  };
  try {
    const ready: Promise<void>[] = [];
    for (let w = 0; w < workerCount; w++) {
      const mine = tasks.slice(w * per, (w + 1) * per);
      const data: TaskWorkerData = {
        handles: mine.map((t) => t.handle),
        keys: mine.map((t) => t.key),
        grants: mine.map((t) => t.grant),
        counters,
        slot: w,
        busyPollMicros: options.busyPollMicros ?? DEFAULT_BUSY_POLL_MICROS,
      };
      const worker = spawnWorker(new URL('./task-worker.ts', import.meta.url), { workerData: data });
      workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`task worker exited (${code}) before it was ready`)));
          worker.once('message', (m: TaskWorkerMessage) => {
            if (m.type === 'ready') resolve();
            else reject(new Error(`task worker: ${m.message}`));
          });
        }),
      );
    }
    await Promise.all(ready);
    stopPolling = true;
    await background;
  } catch (err) {
    await close();
    throw err;
  }
  const measure = async (seconds: number, warmupSeconds = 0.3): Promise<ExonetRunResult> => {
    const sum = (k: number): number => {
      let s = 0;
      for (let w = 0; w < workerCount; w++) s += Atomics.load(count, w * 4 + k);
      return s;
    };
    const missed = () => nic.driver.counters().rxMissed;
    const queueFull = () => core.sessions().reduce((s, t) => s + t.counters.rxQueueFull, 0);
    // The driver's loop: offer a burst on the wire, let the core take it. It yields to the event loop
    // between slices only so the process stays responsive; the tasks run in their own threads.
    const drive = async (ms: number): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        for (let i = 0; i < 4; i++) {
          wire.pump(BURST);
          core.poll(BURST);
        }
        await new Promise<void>((r) => setImmediate(r));
      }
    };
    await drive(warmupSeconds * 1000);
    const r0 = sum(0);
    const b0 = sum(1);
    const o0 = wire.produced;
    const m0 = missed();
    const q0 = queueFull();
    const c0 = process.cpuUsage();
    const d0 = threadCpuSeconds(process.pid);
    const t0 = performance.now();
    await drive(seconds * 1000);
    const t1 = performance.now();
    const cpu = process.cpuUsage(c0);
    const driverCpu = threadCpuSeconds(process.pid) - d0;
    const received = sum(0) - r0;
    const elapsed = (t1 - t0) / 1000;
    return {
      receivers: n,
      workers: workerCount,
      offered: wire.produced - o0,
      received,
      corrupt: sum(1) - b0,
      seconds: elapsed,
      pps: received / elapsed,
      nicMissed: missed() - m0,
      taskQueueFull: queueFull() - q0,
      cpuMicrosPerDatagram: (cpu.user + cpu.system) / Math.max(received, 1),
      driverCpuMicrosPerDatagram: (driverCpu * 1e6) / Math.max(received, 1),
    };
  };
  const setBusyPoll = (micros: number): void => {
    for (const w of workers) w.postMessage({ busyPollMicros: micros });
  };
  return { measure, close, core, setBusyPoll };
}
