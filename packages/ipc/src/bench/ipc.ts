// `exonet bench ipc`: messages per second for 64-byte messages through the ring (threads, processes) and
// through the usual alternatives (MessagePort.postMessage one at a time and in batches of 32, a Unix domain
// socket stream between processes), all in the same run, plus Gbit/s for 1500-byte packets through the ring.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { SharedMemory } from '../shm.ts';
import { spawnProcess, spawnWorker } from '../spawn.ts';
import { BATCH, FRAMES, frameSizeFor, initRingPair, ringPairLayout } from './ring-pair.ts';

const PEER = new URL('./ipc-peer.ts', import.meta.url);

interface Peer {
  send(m: unknown): void;
  next(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

function workerPeer(job: unknown): Peer {
  const w: Worker = spawnWorker(PEER, { workerData: job });
  return {
    send: (m) => w.postMessage(m),
    next: async () => (await once(w, 'message'))[0] as Record<string, unknown>,
    stop: async () => {
      await w.terminate();
    },
  };
}

function processPeer(job: unknown): Peer {
  const c: ChildProcess = spawnProcess(PEER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  c.send({ job });
  return {
    send: (m) => c.send(m as object),
    next: async () => (await once(c, 'message'))[0] as Record<string, unknown>,
    stop: async () => {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    },
  };
}

/** Runs producer and consumer peers from `go` until the consumer is done; messages per second. */
export async function ringRun(
  transport: 'thread' | 'process',
  count: number,
  payload: number,
  frames = FRAMES,
  batch = BATCH,
): Promise<{ rate: number; sleeps: number; cpuNs: number; queuedNs: number }> {
  const layout = ringPairLayout(frames, frameSizeFor(payload));
  let shm: SharedMemory | undefined;
  let buffer: ArrayBufferLike;
  if (transport === 'thread') buffer = new SharedArrayBuffer(layout.size);
  else {
    shm = SharedMemory.create(layout.size);
    buffer = shm.buffer;
  }
  try {
    initRingPair(buffer, layout);
    const base = { kind: 'ring', layout, count, payload, batch, ...(shm ? { name: shm.name } : { buffer }) };
    const spawn = transport === 'thread' ? workerPeer : processPeer;
    const consumer = spawn({ ...base, role: 'consumer' });
    const producer = spawn({ ...base, role: 'producer' });
    try {
      await Promise.all([consumer.next(), producer.next()]);
      const done = Promise.all([consumer.next(), producer.next()]);
      const t0 = process.hrtime.bigint();
      consumer.send({ go: true });
      producer.send({ go: true });
      const [result, sent] = await done;
      const rate = count / (Number(process.hrtime.bigint() - t0) / 1e9);
      // How often a side found nothing to do (its peer behind, or descheduled) and went to sleep.
      const sleeps = (result.waits as number) + (sent.waits as number);
      // The first word of every payload is its sequence number: their sum shows every message arrived intact.
      let expected = 0;
      for (let i = 0; i < count; i++) expected = (expected + i) | 0;
      if (result.sum !== expected) throw new Error(`ring ${transport}: payload checksum ${result.sum} != ${expected}`);
      if (result.bad !== 0) throw new Error(`ring ${transport}: ${result.bad} payloads did not match their descriptor`);
      // CPU time of both sides per message, and the time they were runnable but waited for a CPU, per message.
      const cpuNs = ((result.cpuNs as number) + (sent.cpuNs as number)) / count;
      const queuedNs = ((result.queuedNs as number) + (sent.queuedNs as number)) / count;
      return { rate, sleeps, cpuNs, queuedNs };
    } finally {
      await Promise.all([consumer.stop(), producer.stop()]);
    }
  } finally {
    if (shm) {
      shm.close();
      SharedMemory.unlink(shm.name);
    }
  }
}

/** A task thread sends `count` frames to a driver thread through a channel, every descriptor validated. */
async function channelRun(count: number, payload: number): Promise<number> {
  const driver = workerPeer({ kind: 'channel', role: 'driver', count, payload, frameCount: 1024 });
  let task: Peer | undefined;
  try {
    const { handle } = (await driver.next()) as { handle: unknown };
    task = workerPeer({ kind: 'channel', role: 'task', count, payload, handle, frameCount: 1024 });
    await task.next();
    const done = Promise.all([driver.next(), task.next()]);
    const t0 = process.hrtime.bigint();
    driver.send({ go: true });
    task.send({ go: true });
    await done;
    return count / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await Promise.all([driver.stop(), task?.stop()]);
  }
}

/** The main thread posts `count` 64-byte messages to a worker, one per postMessage or `batch` per postMessage. */
async function postMessageRun(count: number, batch: number): Promise<number> {
  const w = spawnWorker(PEER, { workerData: { kind: 'port', count, batch } });
  try {
    await once(w, 'message');
    const done = once(w, 'message');
    const message = new Uint8Array(64 * batch);
    const t0 = process.hrtime.bigint();
    for (let sent = 0; sent < count; sent += batch) w.postMessage(message);
    await done;
    return count / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await w.terminate();
  }
}

/**
 * A child process writes `count` 64-byte messages into a Unix domain socket stream; this process reads them.
 * `batch` 1: one `write()` per message, as a program sending messages as they come does (Node queues writes
 * made while the kernel buffer is full and flushes them with one writev); `batch` 32: the writer gathers 32
 * messages into one 2 KiB buffer per `write()`, like the batched postMessage.
 */
async function unixSocketRun(count: number, batch: number): Promise<number> {
  const path = join(tmpdir(), `exonet-bench-${process.pid}-${Date.now()}.sock`);
  const server: Server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const peer = processPeer({ kind: 'socket', path, count, payload: 64, batch });
  try {
    const [conn] = (await Promise.all([once(server, 'connection'), peer.next()])) as [[Socket], unknown];
    const socket = conn[0];
    let bytes = 0;
    const all = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes >= count * 64) resolve();
      });
    });
    const t0 = process.hrtime.bigint();
    peer.send({ go: true });
    await all;
    const rate = count / (Number(process.hrtime.bigint() - t0) / 1e9);
    socket.destroy();
    return rate;
  } finally {
    await peer.stop();
    server.close();
    rmSync(path, { force: true });
  }
}

const round = (x: number, digits = 0) => Number(x.toFixed(digits));
/** Ratios keep three significant digits: a quick run's tiny ratios must not round to 0. */
const ratio = (a: number, b: number) => Number((a / b).toPrecision(3));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Runs every measurement side by side, in interleaved rounds (5, or 1 with `quick`), and reports each one's
 * median round, and ratios of medians: interleaving gives every method the same chances on a shared, busy
 * machine, and the median is what a run typically gives (a best round would flatter the noisier side).
 */
export async function run(options: { quick: boolean; log: (line: string) => void }): Promise<Record<string, unknown>> {
  const { quick, log } = options;
  const n = quick
    ? { ring: 20_000, port: 5_000, batched: 20_000, socket: 5_000, channel: 20_000, big: 5_000 }
    : { ring: 50_000_000, port: 300_000, batched: 3_000_000, socket: 300_000, channel: 3_000_000, big: 2_000_000 };
  const rounds = quick ? 1 : 5;
  // Quick runs keep the rings small: they only check the machinery.
  const frames = quick ? 1024 : FRAMES;
  const batch = quick ? 256 : BATCH;
  const sleeps: Record<string, number[]> = { ringThread: [], ringProcess: [], big: [] };
  const cpu: Record<string, number[]> = { ringThread: [], ringProcess: [], big: [] };
  const queued: Record<string, number[]> = { ringThread: [], ringProcess: [], big: [] };
  const ringMeasure = (key: string, transport: 'thread' | 'process', count: number, payload: number) => async () => {
    // 2 KiB frames for 1500-byte packets: a sixteenth of the frames keeps the pool at 8 MiB.
    const big = payload > 64 && !quick;
    const r = await ringRun(transport, count, payload, big ? frames / 16 : frames, big ? batch / 16 : batch);
    sleeps[key].push(r.sleeps);
    cpu[key].push(r.cpuNs);
    queued[key].push(r.queuedNs);
    return r.rate;
  };
  const measures: [string, string, () => Promise<number>][] = [
    ['ringThread', 'ring, threads', ringMeasure('ringThread', 'thread', n.ring, 64)],
    ['ringProcess', 'ring, processes', ringMeasure('ringProcess', 'process', n.ring, 64)],
    ['port', 'postMessage, one at a time', () => postMessageRun(n.port, 1)],
    ['batched', 'postMessage, batches of 32', () => postMessageRun(n.batched, 32)],
    ['socket', 'Unix socket, processes', () => unixSocketRun(n.socket, 1)],
    ['socketBatched', 'Unix socket, 32 per write', () => unixSocketRun(n.batched, 32)],
    ['channel', 'channel (validated), threads', () => channelRun(n.channel, 64)],
    ['big', 'ring, threads, 1500 bytes', ringMeasure('big', 'thread', n.big, 1500)],
  ];
  log(
    `ipc benchmark${quick ? ' (quick)' : ''}: 64-byte messages (descriptor + payload copy), median of ${rounds}; rings of ${frames} frames, batches of ${batch}`,
  );
  const all: Record<string, number[]> = {};
  for (let r = 1; r <= rounds; r++) {
    for (const [key, label, measure] of measures) {
      const rate = await measure();
      all[key] = [...(all[key] ?? []), rate];
      log(`  round ${r} ${`${label}:`.padEnd(30)} ${round(rate).toLocaleString()} msgs/s`);
    }
  }
  const m: Record<string, number> = {};
  for (const key of Object.keys(all)) m[key] = median(all[key]);
  const { ringThread, ringProcess, port, batched, socket, socketBatched, channel, big } = m;
  const gbps = (big * 1500 * 8) / 1e9;
  const ratios = (a: string, b: string) => all[a].map((x, i) => ratio(x, all[b][i]));
  log(
    `  median: ring ${round(ringThread).toLocaleString()} (threads), ${round(ringProcess).toLocaleString()} (processes) msgs/s; 1500 bytes ${round(gbps, 2)} Gbit/s`,
  );
  log(
    `  ratios of medians: threads ${ratio(ringThread, port)}x postMessage, ${ratio(ringThread, batched)}x batched; processes ${ratio(ringProcess, socket)}x Unix socket (${ratio(ringProcess, socketBatched)}x its 32-per-write variant)`,
  );
  log(
    `  per-round ratios: threads/postMessage ${ratios('ringThread', 'port').join(', ')}; threads/batched ${ratios('ringThread', 'batched').join(', ')}; processes/socket ${ratios('ringProcess', 'socket').join(', ')}`,
  );
  log(`  sleeps per ring run: threads ${sleeps.ringThread.join(', ')}; processes ${sleeps.ringProcess.join(', ')}`);
  const ns = (xs: number[]) => xs.map((x) => round(x, 1)).join(', ');
  log(
    `  ns per message, both sides together, on a CPU / waiting for one: threads ${ns(cpu.ringThread)} / ${ns(queued.ringThread)}; processes ${ns(cpu.ringProcess)} / ${ns(queued.ringProcess)}`,
  );
  return {
    ring_thread_msgs_per_s: round(ringThread),
    ring_process_msgs_per_s: round(ringProcess),
    postmessage_msgs_per_s: round(port),
    postmessage_batched_msgs_per_s: round(batched),
    unix_socket_msgs_per_s: round(socket),
    unix_socket_batched_msgs_per_s: round(socketBatched),
    ring_thread_gbps_1500: Number(gbps.toPrecision(4)),
    channel_thread_msgs_per_s: round(channel),
    ratio_ring_thread_vs_postmessage: ratio(ringThread, port),
    ratio_ring_thread_vs_postmessage_batched: ratio(ringThread, batched),
    ratio_ring_process_vs_unix_socket: ratio(ringProcess, socket),
    ratio_ring_process_vs_unix_socket_batched: ratio(ringProcess, socketBatched),
    ring_thread_cpu_ns_per_msg: round(median(cpu.ringThread), 1),
    ring_process_cpu_ns_per_msg: round(median(cpu.ringProcess), 1),
    ring_thread_queued_ns_per_msg: round(median(queued.ringThread), 1),
    ring_process_queued_ns_per_msg: round(median(queued.ringProcess), 1),
    rounds,
    statistic: 'median',
    ring_frames: frames,
    ring_batch: batch,
    messages: n,
    quick,
  };
}
