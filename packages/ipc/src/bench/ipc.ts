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
import { initRingPair, ringPairLayout } from './ring-pair.ts';

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
async function ringRun(transport: 'thread' | 'process', count: number, payload: number): Promise<number> {
  // 1024 frames: a side descheduled on a busy machine finds a full batch waiting, not a wake-up per message.
  const layout = ringPairLayout(1024, 2048);
  let shm: SharedMemory | undefined;
  let buffer: ArrayBufferLike;
  if (transport === 'thread') buffer = new SharedArrayBuffer(layout.size);
  else {
    shm = SharedMemory.create(layout.size);
    buffer = shm.buffer;
  }
  try {
    initRingPair(buffer, layout);
    const base = { kind: 'ring', layout, count, payload, ...(shm ? { name: shm.name } : { buffer }) };
    const spawn = transport === 'thread' ? workerPeer : processPeer;
    const consumer = spawn({ ...base, role: 'consumer' });
    const producer = spawn({ ...base, role: 'producer' });
    try {
      await Promise.all([consumer.next(), producer.next()]);
      const done = Promise.all([consumer.next(), producer.next()]);
      const t0 = process.hrtime.bigint();
      consumer.send({ go: true });
      producer.send({ go: true });
      const [result] = await done;
      const rate = count / (Number(process.hrtime.bigint() - t0) / 1e9);
      // The first word of every payload is its sequence number: their sum shows every message arrived intact.
      let expected = 0;
      for (let i = 0; i < count; i++) expected = (expected + i) | 0;
      if (result.sum !== expected) throw new Error(`ring ${transport}: payload checksum ${result.sum} != ${expected}`);
      return rate;
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

/** A child process writes `count` 64-byte messages into a Unix domain socket stream; this process reads them. */
async function unixSocketRun(count: number): Promise<number> {
  const path = join(tmpdir(), `exonet-bench-${process.pid}-${Date.now()}.sock`);
  const server: Server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const peer = processPeer({ kind: 'socket', path, count, payload: 64 });
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

/**
 * Runs every measurement side by side, in interleaved rounds (3, or 1 with `quick`), and keeps each one's
 * best round: on a shared, busy machine the least disturbed run is the one that says what the code can do,
 * and interleaving gives every method the same chances.
 */
export async function run(options: { quick: boolean; log: (line: string) => void }): Promise<Record<string, unknown>> {
  const { quick, log } = options;
  const n = quick
    ? { ring: 20_000, port: 5_000, batched: 20_000, socket: 5_000, big: 5_000 }
    : { ring: 5_000_000, port: 300_000, batched: 3_000_000, socket: 300_000, big: 1_000_000 };
  const rounds = quick ? 1 : 3;
  const measures: [string, string, () => Promise<number>][] = [
    ['ringThread', 'ring, threads', () => ringRun('thread', n.ring, 64)],
    ['ringProcess', 'ring, processes', () => ringRun('process', n.ring, 64)],
    ['port', 'postMessage, one at a time', () => postMessageRun(n.port, 1)],
    ['batched', 'postMessage, batches of 32', () => postMessageRun(n.batched, 32)],
    ['socket', 'Unix socket, processes', () => unixSocketRun(n.socket)],
    ['channel', 'channel (validated), threads', () => channelRun(n.ring, 64)],
    ['big', 'ring, threads, 1500 bytes', () => ringRun('thread', n.big, 1500)],
  ];
  log(`ipc benchmark${quick ? ' (quick)' : ''}: 64-byte messages (descriptor + payload copy), best of ${rounds}`);
  const best: Record<string, number> = {};
  for (let r = 1; r <= rounds; r++) {
    for (const [key, label, measure] of measures) {
      const rate = await measure();
      best[key] = Math.max(best[key] ?? 0, rate);
      log(`  round ${r} ${`${label}:`.padEnd(30)} ${round(rate).toLocaleString()} msgs/s`);
    }
  }
  const { ringThread, ringProcess, port, batched, socket, channel, big } = best;
  const gbps = (big * 1500 * 8) / 1e9;
  log(
    `  best: ring ${round(ringThread).toLocaleString()} (threads), ${round(ringProcess).toLocaleString()} (processes) msgs/s; 1500 bytes ${round(gbps, 2)} Gbit/s`,
  );
  return {
    ring_thread_msgs_per_s: round(ringThread),
    ring_process_msgs_per_s: round(ringProcess),
    postmessage_msgs_per_s: round(port),
    postmessage_batched_msgs_per_s: round(batched),
    unix_socket_msgs_per_s: round(socket),
    ring_thread_gbps_1500: Number(gbps.toPrecision(4)),
    channel_thread_msgs_per_s: round(channel),
    ratio_ring_thread_vs_postmessage: ratio(ringThread, port),
    ratio_ring_thread_vs_postmessage_batched: ratio(ringThread, batched),
    ratio_ring_process_vs_unix_socket: ratio(ringProcess, socket),
    rounds,
    messages: n,
    quick,
  };
}
