/**
 * A worker thread hosting many receiving tasks of the e2e benchmark: each task is its own DriverConnection
 * (its own channel, key, grant and RX queue), attached and installed through the client library exactly as
 * an application does; the tasks of one worker share its event loop (1,000 threads would not fit 2 cores).
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DriverConnection } from '@exonet/client';
import type { Ed25519KeyPair } from '@exonet/grant';
import { type ChannelHandle, joinChannelGroup } from '@exonet/ipc';
import { readUdpPayload } from './udp-wire.ts';

/** What the driver's thread hands each worker. */
export interface TaskWorkerData {
  readonly handles: readonly ChannelHandle[];
  readonly keys: readonly Ed25519KeyPair[];
  readonly grants: readonly string[];
  /** Int32 counters shared with the driver's thread: [slot * 4] frames read, [slot * 4 + 1] bad frames. */
  readonly counters: SharedArrayBuffer;
  readonly slot: number;
  /** The tasks' poller busy-polls this long after work, µs (DriverConnection's busyPollMicros). */
  readonly busyPollMicros: number;
}

/** Messages a task worker posts: ready (every task attached with its grant installed), or failed. The driver's
 * thread ends the worker with terminate() when done. */
export type TaskWorkerMessage = { type: 'ready' } | { type: 'failed'; message: string };

async function main(): Promise<void> {
  const data = workerData as TaskWorkerData;
  const port = parentPort;
  if (port === null) throw new Error('task-worker: expected to run in a worker thread');
  const counters = new Int32Array(data.counters);
  const good = data.slot * 4;
  const bad = good + 1;
  let conns: DriverConnection[] = [];
  try {
    conns = await Promise.all(
      data.handles.map((h, i) =>
        DriverConnection.attach(h, { key: data.keys[i], busyPollMicros: data.busyPollMicros }),
      ),
    );
    await Promise.all(conns.map((c, i) => c.install(data.grants[i])));
  } catch (err) {
    port.postMessage({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  // One handler for every task: reads each datagram's payload in place, in the task's packet memory, with
  // both checksums checked (the client library's allocation-free receive: no view is made per frame). The
  // counts go to the shared counters with plain stores: the driver's thread reads them after the window, and
  // an atomic store per batch would cost a memory barrier each.
  let read = 0;
  let broken = 0;
  const onFrame = (bytes: Uint8Array, offset: number, length: number): void => {
    if (readUdpPayload(bytes, length, offset) >= 0) counters[good] = ++read;
    else counters[bad] = ++broken;
  };
  for (const c of conns) c.onFrameAt(onFrame);
  // Busy polling can be changed between measurements (the A/B probe does).
  port.on('message', (m: { busyPollMicros?: number }) => {
    const handle = data.handles[0];
    if (typeof m?.busyPollMicros === 'number' && handle?.group !== undefined) {
      joinChannelGroup(handle.group.group).busyPollMicros = m.busyPollMicros;
    }
  });
  port.postMessage({ type: 'ready' });
}

await main();
