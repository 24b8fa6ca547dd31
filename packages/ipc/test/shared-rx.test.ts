import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannelGroup, joinChannelGroup } from '../src/channel-group.ts';
import { createChannel, type DriverChannel } from '../src/driver-channel.ts';
import { IpcError } from '../src/errors.ts';
import { DescriptorStatus, RingHeader, RingId } from '../src/layout.ts';
import { SharedMemory } from '../src/shm.ts';
import { spawnProcess } from '../src/spawn.ts';
import { attachChannel, type TaskChannel } from '../src/task-channel.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A word view of the frame `bytes` (4-aligned, readable a word past its end) for receiveWords. */
function wordsOf(bytes: Uint8Array): Int32Array {
  const padded = new Uint8Array((bytes.length + 7) & ~3);
  padded.set(bytes);
  return new Int32Array(padded.buffer);
}

function frame(member: number, seq: number, length = 24): Uint8Array {
  const f = new Uint8Array(length);
  new DataView(f.buffer).setUint32(0, seq);
  f[4] = member;
  for (let i = 5; i < length; i++) f[i] = (seq + i) & 0xff;
  return f;
}

/** `n` member channels of a group with a shared receive queue, each attached here, receiving what it gets. */
function sharedGroup(transport: 'thread' | 'process', n: number, queueFrames = 128) {
  const group = createChannelGroup({ transport, capacity: n, sharedRx: { frameCount: queueFrames, frameSize: 128 } });
  const drivers: DriverChannel[] = [];
  const tasks: TaskChannel[] = [];
  const got: Uint8Array[][] = [];
  const stops: (() => void)[] = [];
  for (let i = 0; i < n; i++) {
    const d = createChannel({ transport, frameCount: 8, frameSize: 64, group });
    const t = attachChannel(d.handle);
    drivers.push(d);
    tasks.push(t);
    const mine: Uint8Array[] = [];
    got.push(mine);
    const poller = joinChannelGroup(t.group!.group);
    stops.push(poller.add(t.group!.member, () => {}));
    stops.push(
      poller.receiveShared(t.group!, (bytes, offset, length) => mine.push(bytes.slice(offset, offset + length))),
    );
  }
  const poller = joinChannelGroup(tasks[0].group!.group);
  const queue = group.sharedRx!;
  return { group, drivers, tasks, got, stops, poller, queue };
}

describe('channel group: shared receive queue', () => {
  for (const transport of ['thread', 'process'] as const) {
    it(`hands each member exactly its frames, in order, whatever the interleaving (${transport})`, async () => {
      const g = sharedGroup(transport, 5);
      try {
        const per = 60;
        let sent = 0;
        // Round-robin as the benchmark sends, past the queue's 128 buffers several times over.
        for (let seq = 0; seq < per; seq++) {
          for (let m = 0; m < 5; m++) {
            // Mostly frames within one 128-byte buffer, every fourth up to 500 bytes: a chain of buffers.
            const f = frame(m, seq, (seq + m) % 4 === 3 ? 129 + ((seq * 37 + m) % 372) : 20 + ((seq * 7 + m) % 90));
            const d = g.drivers[m];
            if (f.length <= 128) expect(g.queue.receiveWords(wordsOf(f), 0, f.length, d.rxTag)).toBe(true);
            else expect(g.queue.receiveChain(f, f.length, d.rxTag)).toBe(true);
            sent++;
          }
          if (seq % 8 === 7) {
            g.queue.flush(false);
            g.group.kick();
            await until(() => g.got.reduce((a, x) => a + x.length, 0) === sent, `frames up to ${seq}`);
          }
        }
        g.queue.flush(false);
        g.group.kick();
        await until(() => g.got.reduce((a, x) => a + x.length, 0) === sent, 'every frame');
        for (let m = 0; m < 5; m++) {
          expect(g.got[m].map((f) => new DataView(f.buffer).getUint32(0))).toEqual(
            Array.from({ length: per }, (_, k) => k),
          );
          for (const [seq, f] of g.got[m].entries()) expect(f).toEqual(frame(m, seq, f.length));
        }
        // Every frame went back: the driver holds none, the task offered them all again.
        await until(() => g.queue.ownership().task === 128, 'frames back');
      } finally {
        for (const s of g.stops) s();
        for (const d of g.drivers) d.close();
        g.group.close();
      }
    });
  }

  it('never hands a frame left for a member that has gone to the next holder of its index', async () => {
    const g = sharedGroup('thread', 2);
    try {
      const old = g.drivers[1];
      const oldTag = old.rxTag;
      // A frame for member 1 reaches the queue, then member 1 goes before its task read anything.
      expect(g.queue.receiveWords(wordsOf(frame(1, 99)), 0, 24, oldTag)).toBe(true);
      g.stops[3]();
      g.tasks[1].close();
      old.close();
      // A new channel takes the freed index: same member, another tag.
      const d = createChannel({ frameCount: 8, frameSize: 64, group: g.group });
      expect(d.member).toBe(old.member);
      expect(d.rxTag).not.toBe(oldTag);
      const t = attachChannel(d.handle);
      const mine: Uint8Array[] = [];
      const poller = joinChannelGroup(t.group!.group);
      const stopNew = poller.receiveShared(t.group!, (b, o, l) => mine.push(b.slice(o, o + l)));
      expect(g.queue.receiveWords(wordsOf(frame(1, 100)), 0, 24, d.rxTag)).toBe(true);
      expect(g.queue.receiveWords(wordsOf(frame(0, 5)), 0, 24, g.drivers[0].rxTag)).toBe(true);
      g.queue.flush();
      await until(() => mine.length === 1 && g.got[0].length === 1, 'the new member and member 0');
      expect(new DataView(mine[0].buffer).getUint32(0)).toBe(100);
      // The stale frame went back to the queue unread by anyone.
      await until(() => g.queue.ownership().task === 128, 'frames back');
      stopNew();
      t.close();
      d.close();
    } finally {
      for (const s of g.stops) s();
      for (const d of g.drivers) d.close();
      g.group.close();
    }
  });

  it('never hands over part of a frame: a chain the queue has no room for goes back whole, empty', async () => {
    const g = sharedGroup('thread', 2, 8);
    try {
      // Eight buffers of 128 bytes: a 900-byte frame needs eight, so after one small frame it cannot fit.
      expect(g.queue.receiveWords(wordsOf(frame(0, 1)), 0, 24, g.drivers[0].rxTag)).toBe(true);
      expect(g.queue.receiveChain(frame(1, 2, 900), 900, g.drivers[1].rxTag)).toBe(false);
      // The seven it took went back at once, empty; the task side gives them back again.
      expect(g.queue.ownership().driverRx).toBe(0);
      g.queue.flush();
      await until(() => g.got[0].length === 1 && g.queue.ownership().task === 8, 'the small frame, buffers back');
      await until(() => g.queue.rxBuffersOffered() === 8, 'every buffer offered again');
      expect(g.got[1]).toEqual([]);
      // With its buffers back the same frame fits (eight pieces) and arrives whole.
      expect(g.queue.receiveChain(frame(1, 3, 900), 900, g.drivers[1].rxTag)).toBe(true);
      g.queue.flush();
      await until(() => g.got[1].length === 1, 'the joined frame');
      expect(g.got[1][0]).toEqual(frame(1, 3, 900));
    } finally {
      for (const s of g.stops) s();
      for (const d of g.drivers) d.close();
      g.group.close();
    }
  });

  it('drops a chain cut short by a piece of another frame, and keeps the frames around it', async () => {
    const g = sharedGroup('thread', 2);
    try {
      const q = g.queue;
      const [a, b] = [g.drivers[0].rxTag, g.drivers[1].rxTag];
      // By hand, as a broken driver might: two pieces of a frame for member 0, then member 1's frame.
      const off1 = q.takeRxBuffer();
      const off2 = q.takeRxBuffer();
      q.pool.bytes.set(frame(0, 7, 128), off1);
      expect(q.deliverRx(off1, 128, a, DescriptorStatus.MORE)).toBe(true);
      q.pool.bytes.set(frame(1, 8, 40), off2);
      expect(q.deliverRx(off2, 40, b, DescriptorStatus.OK)).toBe(true);
      expect(q.receiveWords(wordsOf(frame(0, 9)), 0, 24, a)).toBe(true);
      q.flush();
      await until(() => g.got[0].length === 1 && g.got[1].length === 1, 'both members');
      expect(new DataView(g.got[0][0].buffer).getUint32(0)).toBe(9);
      expect(g.got[1][0]).toEqual(frame(1, 8, 40));
    } finally {
      for (const s of g.stops) s();
      for (const d of g.drivers) d.close();
      g.group.close();
    }
  });

  it('refuses a second receiver for a member, a membership whose tag names another member, and a plain group', () => {
    const g = sharedGroup('thread', 2);
    try {
      const m = g.tasks[0].group!;
      expect(() => g.poller.receiveShared(m, () => {})).toThrow(/already receives/);
      expect(() => g.poller.receiveShared({ ...m, rxTag: g.tasks[1].group!.rxTag }, () => {})).toThrow(/does not name/);
      const plain = createChannelGroup({ capacity: 4 });
      const d = createChannel({ frameCount: 8, group: plain });
      const t = attachChannel(d.handle);
      expect(joinChannelGroup(t.group!.group).sharesRx).toBe(false);
      expect(() => joinChannelGroup(t.group!.group).receiveShared(t.group!, () => {})).toThrow(IpcError);
      t.close();
      d.close();
      plain.close();
      expect(() => createChannelGroup({ sharedRx: { frameCount: 0 } })).toThrow(/sharedRx.frameCount/);
    } finally {
      for (const s of g.stops) s();
      for (const d of g.drivers) d.close();
      g.group.close();
    }
  });

  it('a task side that scribbles over the queue’s free ring is refused frame by frame, then cut off', () => {
    const g = sharedGroup('thread', 2);
    try {
      const q = g.queue;
      const ring = q.layout.rings[RingId.RX_FREE];
      const buffer = (q.handle as { buffer: SharedArrayBuffer }).buffer;
      const slots = new Uint32Array(buffer, ring.offset + RingHeader.SIZE, (ring.capacity * ring.slotSize) >> 2);
      // Every offered offset becomes one outside the pool or not at a frame start.
      for (let i = 0; i < slots.length; i += 4) slots[i] = i % 8 === 0 ? 0x7fff_ff00 : 3;
      let delivered = 0;
      for (let k = 0; k < 40; k++) if (q.receiveWords(wordsOf(frame(0, k)), 0, 24, g.drivers[0].rxTag)) delivered++;
      expect(delivered).toBe(0);
      expect(q.violationCounts().badOffset).toBeGreaterThan(0);
      expect(q.connected).toBe(false);
      // The members' own channels are untouched.
      for (const d of g.drivers) expect(d.connected).toBe(true);
    } finally {
      for (const s of g.stops) s();
      for (const d of g.drivers) d.close();
      g.group.close();
    }
  });

  it('serves the members hosted by another process, and reclaims the queue when that process is killed', async () => {
    const group = createChannelGroup({ transport: 'process', capacity: 4, sharedRx: { frameCount: 64 } });
    const queue = group.sharedRx!;
    const drivers = Array.from({ length: 3 }, () => createChannel({ transport: 'process', frameCount: 8, group }));
    const task = spawnProcess(
      new URL('./fixtures/shared-rx-task-process.ts', import.meta.url),
      [JSON.stringify(drivers.map((d) => d.handle))],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    children.push(task);
    try {
      await once(task, 'message');
      queue.watchProcess(task.pid!, 10);
      // Round-robin over the members, small frames and chains of up to four 128-byte buffers.
      const sent: number[][] = drivers.map(() => []);
      for (let seq = 0; seq < 90; seq++) {
        const m = seq % 3;
        const length = seq % 5 === 4 ? 129 + ((seq * 31) % 380) : 24 + (seq % 90);
        const f = frame(m, seq, length);
        const ok =
          length <= 128
            ? queue.receiveWords(wordsOf(f), 0, length, drivers[m].rxTag)
            : queue.receiveChain(f, length, drivers[m].rxTag);
        if (ok) sent[m].push(seq);
        if (seq % 10 === 9 || !ok) {
          queue.flush(false);
          group.kick();
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      queue.flush(false);
      group.kick();
      let got: [number, number][][] = [];
      const deadline = Date.now() + 10_000;
      do {
        task.send('report');
        [{ got }] = (await once(task, 'message')) as [{ got: [number, number][][] }];
      } while (got.reduce((n, g) => n + g.length, 0) < sent.reduce((n, g) => n + g.length, 0) && Date.now() < deadline);
      expect(sent.every((s) => s.length > 20)).toBe(true);
      for (let m = 0; m < 3; m++) {
        expect(got[m].map(([seq]) => seq)).toEqual(sent[m]);
        for (const [seq, length] of got[m])
          expect(length).toBe(seq % 5 === 4 ? 129 + ((seq * 31) % 380) : 24 + (seq % 90));
      }
      task.kill('SIGKILL');
      await until(() => !queue.connected, 'the queue disconnected');
      expect(queue.disconnectReason).toBe(`task process ${task.pid} exited`);
    } finally {
      for (const d of drivers) d.close();
      group.close();
    }
    expect(queue.ownership()).toMatchObject({ task: 0, driverRx: 0, driverTx: 0, reclaimed: 64 });
  });

  it('leaves no shared memory behind when the queue is refused (process transport)', () => {
    // A worker process runs one test file at a time: only this test makes segments of this process's name now.
    const ours = () => readdirSync('/dev/shm').filter((n) => n.startsWith(`exonet-${process.pid}-`)).length;
    const before = ours();
    expect(() => createChannelGroup({ transport: 'process', sharedRx: { frameCount: 8, frameSize: 100 } })).toThrow(
      /frameSize/,
    );
    expect(ours()).toBe(before);
  });

  it('removes the queue’s shared memory with the group (process transport)', () => {
    const group = createChannelGroup({ transport: 'process', capacity: 2, sharedRx: { frameCount: 16 } });
    const name = (group.handle.sharedRx!.channel as { name: string }).name;
    expect(() => SharedMemory.open(name).close()).not.toThrow();
    group.close();
    expect(() => SharedMemory.open(name)).toThrow();
  });
});

describe('channel group: busy polling', () => {
  it('keeps the poller looking for a while after work, so frames published then need no wake-up', async () => {
    const group = createChannelGroup({ capacity: 4 });
    const d = createChannel({ frameCount: 16, frameSize: 64, group });
    const t = attachChannel(d.handle, { rxBuffers: 8 });
    const poller = joinChannelGroup(t.group!.group);
    let received = 0;
    const drain = () => {
      for (let off = t.nextRx(); off >= 0; off = t.nextRx()) {
        received++;
        t.postRx(off);
      }
      t.flush();
    };
    expect(() => poller.add(t.group!.member, drain, { busyPollMicros: -1 })).toThrow(/busyPollMicros/);
    const stop = poller.add(t.group!.member, drain, { busyPollMicros: 1_500_000 });
    try {
      await until(() => poller.sleeping, 'the poller asleep');
      // The first frame wakes it; the ones after, inside the busy window, find it awake.
      const wakeups = poller.wakeups;
      for (let k = 0; k < 5; k++) {
        expect(d.receive(new Uint8Array([k]))).toBe(true);
        d.flush();
        await until(() => received === k + 1, `frame ${k}`);
        expect(poller.sleeping).toBe(false);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(poller.wakeups - wakeups).toBe(1);
      expect(poller.busyPolls).toBeGreaterThan(0);
      // Past the window with nothing to do, it sleeps again.
      await until(() => poller.sleeping, 'asleep after the window', 15_000);
      // Changed at run time: with no busy polling, a frame's wake-up is followed by sleep at once.
      expect(() => {
        poller.busyPollMicros = Number.NaN;
      }).toThrow(/busyPollMicros/);
      poller.busyPollMicros = 0;
      expect(poller.busyPollMicros).toBe(0);
      const busy = poller.busyPolls;
      expect(d.receive(new Uint8Array([9]))).toBe(true);
      d.flush();
      await until(() => received === 6 && poller.sleeping, 'the frame, then sleep');
      expect(poller.busyPolls).toBe(busy);
    } finally {
      stop();
      t.close();
      d.close();
      group.close();
    }
  });
});
