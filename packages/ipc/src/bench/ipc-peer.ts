// The far end of each `exonet bench ipc` measurement, in a worker thread or a child process.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { atomicsDoorbell } from '../doorbell.ts';
import { createChannel } from '../driver-channel.ts';
import type { ChannelHandle } from '../segment.ts';
import { futexDoorbell, SharedMemory } from '../shm.ts';
import { attachChannel } from '../task-channel.ts';
import { runDriver, runTask } from './channel-path.ts';
import { type RingPairLayout, runConsumer, runProducer } from './ring-pair.ts';

interface RingJob {
  kind: 'ring';
  role: 'producer' | 'consumer';
  layout: RingPairLayout;
  count: number;
  payload: number;
  batch: number;
  buffer?: SharedArrayBuffer;
  name?: string;
}
interface PortJob {
  kind: 'port';
  count: number;
  batch: number;
}
interface SocketJob {
  kind: 'socket';
  path: string;
  count: number;
  payload: number;
  /** Messages per write(): 1, or that many gathered into one buffer. */
  batch: number;
}
interface ChannelJob {
  kind: 'channel';
  role: 'driver' | 'task';
  count: number;
  payload: number;
  handle?: ChannelHandle;
  frameCount: number;
}
type Job = RingJob | PortJob | SocketJob | ChannelJob;

/** The driver peer creates the channel (a channel is the driver's); the task peer attaches to its handle. */
function channelJob(job: ChannelJob, reply: (m: unknown) => void, onGo: (f: () => void) => void): void {
  if (job.role === 'driver') {
    const driver = createChannel({ frameCount: job.frameCount, frameSize: 2048 });
    onGo(() => {
      const sum = runDriver(driver, job.count);
      driver.close();
      reply({ done: true, sum });
    });
    reply({ ready: true, handle: driver.handle });
  } else {
    const task = attachChannel(job.handle!, { rxBuffers: 0 });
    onGo(() => {
      runTask(task, job.count, job.payload);
      reply({ done: true });
    });
    reply({ ready: true });
  }
}

/**
 * This thread's time on a CPU and time waiting for one (runnable but not running), in ns, from Linux's
 * /proc/thread-self/schedstat; zeros elsewhere. Read before and after a run: what the run cost, whatever the
 * wall clock says on a shared machine.
 */
function schedstat(): [number, number] {
  try {
    const [cpu, queued] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return [cpu, queued];
  } catch {
    return [0, 0];
  }
}

function ringJob(job: RingJob, reply: (m: unknown) => void, onGo: (f: () => void) => void): void {
  const shm = job.name ? SharedMemory.open(job.name) : undefined;
  const buffer = shm ? shm.buffer : job.buffer!;
  const doorbell = shm ? futexDoorbell : atomicsDoorbell;
  onGo(() => {
    const before = schedstat();
    let result = { sum: 0, bad: 0, waits: 0 };
    if (job.role === 'producer')
      result.waits = runProducer(buffer, job.layout, doorbell, job.count, job.payload, job.batch);
    else result = runConsumer(buffer, job.layout, doorbell, job.count, job.payload, job.batch);
    const after = schedstat();
    shm?.close();
    reply({ done: true, ...result, cpuNs: after[0] - before[0], queuedNs: after[1] - before[1] });
  });
  reply({ ready: true });
}

function portJob(job: PortJob, port: NonNullable<typeof parentPort>): void {
  let got = 0;
  port.on('message', (m: Uint8Array | Uint8Array[]) => {
    got += job.batch === 1 ? 1 : (m as Uint8Array).length / 64;
    if (got >= job.count) port.postMessage({ done: true });
  });
  port.postMessage({ ready: true });
}

function socketJob(job: SocketJob, reply: (m: unknown) => void, onGo: (f: () => void) => void): void {
  const socket = connect(job.path);
  // `batch` messages of `payload` bytes per write. Their contents stay constant (a queued buffer may be
  // written again): the reader only counts bytes, which spares the baseline the ring consumer's checks.
  const buffer = Buffer.alloc(job.payload * job.batch, 7);
  socket.on('connect', () => reply({ ready: true }));
  onGo(() => {
    let sent = 0;
    const pump = () => {
      while (sent < job.count) {
        sent += job.batch;
        if (!socket.write(buffer)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(() => reply({ done: true }));
    };
    pump();
  });
}

function start(job: Job, reply: (m: unknown) => void, onGo: (f: () => void) => void): void {
  if (job.kind === 'ring') ringJob(job, reply, onGo);
  else if (job.kind === 'channel') channelJob(job, reply, onGo);
  else if (job.kind === 'socket') socketJob(job, reply, onGo);
  else portJob(job, parentPort!);
}

if (parentPort && workerData) {
  const port = parentPort;
  let go: (() => void) | undefined;
  // The postMessage measurement counts every message on this port: no other listener there.
  if ((workerData as Job).kind !== 'port') {
    port.on('message', (m: { go?: boolean }) => {
      if (m?.go && go) go();
    });
  }
  start(
    workerData as Job,
    (m) => port.postMessage(m),
    (f) => {
      go = f;
    },
  );
} else if (process.send) {
  let go: (() => void) | undefined;
  process.on('message', (m: { go?: boolean; job?: Job }) => {
    if (m.job)
      start(
        m.job,
        (r) => process.send!(r),
        (f) => {
          go = f;
        },
      );
    else if (m.go && go) go();
  });
}
