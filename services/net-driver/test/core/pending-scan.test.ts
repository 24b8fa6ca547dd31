import { attachChannel, ChannelHeader, CONTROL_PAYLOAD, createChannelGroup, type TaskChannel } from '@exonet/ipc';
import { ChunkReader, ChunkWriter, jsonMessage, MessageType } from '@exonet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ExokernelCore } from '../../src/core/exokernel.ts';
import type { TaskSession } from '../../src/core/task-session.ts';
import { createInThreadNic } from '../../src/nic/in-thread.ts';
import { Cable } from '../../src/wire/cable.ts';

/**
 * The core visits only the tasks that announced work (their group bit or their channel's flag) between full
 * sweeps. These tests turn the sweep off, so whatever gets served was found through the announcement alone.
 */
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function core() {
  const cable = new Cable();
  const nic = createInThreadNic({ wire: cable.a, mac: Uint8Array.of(0x00, 0xe0, 0x4c, 0, 0, 1) });
  nic.driver.start();
  const c = new ExokernelCore({
    driverId: 'drv-1',
    device: nic.driver,
    keys: () => undefined,
    revocations: undefined as never,
    // No sweep: only announced work is seen.
    sweepMs: Number.POSITIVE_INFINITY,
  });
  // The first poll's clock starts the sweep interval.
  c.poll();
  closers.push(async () => {
    c.close();
    await nic.close();
  });
  return c;
}

interface RawTask {
  readonly session: TaskSession;
  readonly channel: TaskChannel;
  readonly writer: ChunkWriter;
  readonly reader: ChunkReader;
  readonly buffer: SharedArrayBuffer;
  answered: number;
}

function rawTask(c: ExokernelCore, group?: ReturnType<typeof createChannelGroup>, frameCount = 64): RawTask {
  const { session, handle } = c.attach({ principal: 'alice', frameCount, group });
  const channel = attachChannel(handle, { rxBuffers: 4 });
  const writer = new ChunkWriter((slot) => channel.request(slot), CONTROL_PAYLOAD);
  return {
    session,
    channel,
    writer,
    reader: new ChunkReader(),
    buffer: (handle as { buffer: SharedArrayBuffer }).buffer,
    answered: 0,
  };
}

/** Sends a STATUS request (nothing to prove for it: the core answers it for any task). */
function ask(t: RawTask, id: number): void {
  t.writer.write(jsonMessage(MessageType.STATUS, id, 0, {}));
}

function answers(t: RawTask): number {
  // A response may take several control slots: count whole messages.
  for (let slot = t.channel.readResponse(); slot !== undefined; slot = t.channel.readResponse()) {
    const m = t.reader.push(slot);
    if (m !== undefined && typeof m !== 'string') t.answered++;
  }
  return t.answered;
}

describe('core: visiting only the tasks that announced work', () => {
  it('always picks up a request posted by a task, grouped or not, at the next poll', () => {
    const c = core();
    const group = createChannelGroup({ capacity: 64 });
    closers.push(() => group.close());
    const tasks = Array.from({ length: 40 }, (_, i) => rawTask(c, i % 2 === 0 ? group : undefined));
    let seed = 12345;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const asked = new Array<number>(tasks.length).fill(0);
    for (let round = 0; round < 300; round++) {
      // A random handful of tasks posts a request; one poll must answer every one of them.
      for (let k = 0; k < 1 + Math.floor(random() * 5); k++) {
        const i = Math.floor(random() * tasks.length);
        ask(tasks[i], ++asked[i]);
      }
      c.poll();
      for (let i = 0; i < tasks.length; i++) expect(answers(tasks[i])).toBe(asked[i]);
    }
    // And a task with nothing to say was never served: nothing was swept.
    const idle = rawTask(c, group);
    c.poll();
    expect(idle.session.counters.controlRequests).toBe(0);
  });

  it('does not let a task that announces work forever starve the others', () => {
    const c = core();
    const group = createChannelGroup({ capacity: 32 });
    closers.push(() => group.close());
    const hog = rawTask(c, group, 512);
    const others = [rawTask(c, group), rawTask(c)];
    const posted = new Int32Array(hog.buffer, ChannelHeader.TASK_POSTED, 1);
    for (let round = 0; round < 200; round++) {
      // The hog raises its flag and its group bit without end and keeps its TX ring full of frames no grant
      // accepts (each comes back denied), as a hostile task may.
      Atomics.store(posted, 0, 1);
      for (let off = hog.channel.alloc(); off >= 0; off = hog.channel.alloc()) hog.channel.send(off, 60);
      hog.channel.flush();
      for (const o of others) ask(o, round + 1);
      const denied = c.counters.txDenied;
      c.poll();
      for (const o of others) expect(answers(o)).toBe(round + 1);
      // The hog had hundreds of frames queued: a visit takes 64 of them at most.
      expect(c.counters.txDenied - denied).toBeLessThanOrEqual(64);
      for (let off = hog.channel.nextCompletion(); off >= 0; off = hog.channel.nextCompletion()) hog.channel.free(off);
    }
    // The hog was served too (its share every poll).
    expect(c.counters.txDenied).toBe(200 * 64);
    expect(c.counters.txSent).toBe(0);
  });
});
