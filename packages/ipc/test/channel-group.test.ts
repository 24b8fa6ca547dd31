import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannelGroup, joinChannelGroup } from '../src/channel-group.ts';
import { createChannel, type DriverChannel } from '../src/driver-channel.ts';
import { SharedMemory } from '../src/shm.ts';
import { spawnProcess } from '../src/spawn.ts';
import { attachChannel, type TaskChannel } from '../src/task-channel.ts';
import { exploreGroup } from './group-wakeup-model.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const tick = () => new Promise<void>((r) => setImmediate(r));

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** `n` channels of one group, each attached and served by this thread's poller, counting what it reads. */
function groupOf(n: number, sweepMs = 60_000) {
  const group = createChannelGroup({ capacity: n });
  const drivers: DriverChannel[] = [];
  const tasks: TaskChannel[] = [];
  const received = new Array<number>(n).fill(0);
  const services = new Array<number>(n).fill(0);
  const stops: (() => void)[] = [];
  for (let i = 0; i < n; i++) {
    const d = createChannel({ frameCount: 16, frameSize: 64, group });
    const t = attachChannel(d.handle, { rxBuffers: 8 });
    drivers.push(d);
    tasks.push(t);
    const poller = joinChannelGroup(t.group!.group);
    stops.push(
      poller.add(
        t.group!.member,
        () => {
          services[i]++;
          for (let off = t.nextRx(); off >= 0; off = t.nextRx()) {
            received[i]++;
            t.postRx(off);
          }
          t.flush();
        },
        { sweepMs },
      ),
    );
  }
  const poller = joinChannelGroup(tasks[0].group!.group);
  return { group, drivers, tasks, received, services, stops, poller };
}

describe('channel group', () => {
  it('drains many channels with one wake-up per batch, visiting only the marked ones', async () => {
    const n = 200;
    const g = groupOf(n);
    // Let the poller settle into its sleep.
    await until(() => g.poller.sleeping, 'the poller asleep');
    const before = g.poller.wakeups;
    const batches = 20;
    let sent = 0;
    for (let b = 0; b < batches; b++) {
      // Each batch: one frame to every third channel, published channel by channel, the poller woken once.
      for (let i = b % 3; i < n; i += 3) {
        expect(g.drivers[i].receive(new Uint8Array([b, i & 0xff]))).toBe(true);
        g.drivers[i].flush(false);
        sent++;
      }
      g.group.kick();
      await until(() => g.received.reduce((a, x) => a + x, 0) === sent, `batch ${b}`);
      await until(() => g.poller.sleeping, 'the poller asleep again');
    }
    // One wake-up per batch (never one per channel), and no channel served that had nothing.
    expect(g.poller.wakeups - before).toBe(batches);
    for (let i = 0; i < n; i++) {
      expect(g.received[i]).toBe(Math.ceil((batches - (i % 3)) / 3));
    }
    expect(g.poller.timeouts).toBe(0);
    for (const s of g.stops) s();
    for (const t of g.tasks) t.close();
    for (const d of g.drivers) d.close();
    expect(g.group.size).toBe(0);
    g.group.close();
  });

  it('loses no wake-up in any interleaving of the driver and the poller (exhaustive model)', () => {
    // Every interleaving of the model's atomic steps (docs/ipc-layout.md, "Channel group")...
    for (const channels of [1, 2, 3]) {
      const r = exploreGroup({ channels, messages: channels + 3 });
      expect(r.lostWakeup).toBeUndefined();
      expect(r.states).toBeGreaterThan(10);
    }
    // ...and the broken variants are caught.
    for (const bug of ['no-recheck', 'clear-after-drain', 'flag-before-publish'] as const) {
      expect(exploreGroup({ channels: 2, messages: 3, bug }).lostWakeup).toBeDefined();
    }
  });

  it('tells a member that the driver disconnected it, keeps serving the others, and reuses the index', async () => {
    const g = groupOf(4);
    g.drivers[1].disconnect('test');
    await until(() => g.services[1] > 0 && !g.tasks[1].connected, 'member 1 told');
    expect(g.drivers[2].receive(new Uint8Array([7]))).toBe(true);
    g.drivers[2].flush();
    await until(() => g.received[2] === 1, 'member 2 still served');
    const freed = g.drivers[1].member;
    g.stops[1]();
    g.tasks[1].close();
    g.drivers[1].close();
    expect(g.group.size).toBe(3);
    // The freed index is free again: the next members take the free ones, it among them.
    const more = Array.from({ length: g.group.capacity - 3 }, () =>
      createChannel({ frameCount: 4, frameSize: 64, group: g.group }),
    );
    expect(more.map((c) => c.member)).toContain(freed);
    expect(() => createChannel({ frameCount: 4, frameSize: 64, group: g.group })).toThrow(
      /EXO_ERR_IPC_INVALID_ARGUMENT/,
    );
    for (const c of more) c.close();
    // A task that closes its end while grouped: the driver notices, nothing else is disturbed.
    g.stops[3]();
    g.tasks[3].close();
    expect(g.drivers[3].connected).toBe(false);
    expect(g.drivers[3].ownership().reclaimed).toBe(16);
    expect(g.drivers[0].receive(new Uint8Array([1]))).toBe(true);
    g.drivers[0].flush();
    await until(() => g.received[0] === 1, 'member 0 still served');
    for (const i of [0, 2]) {
      g.stops[i]();
      g.tasks[i].close();
    }
    for (const d of g.drivers) d.close();
    expect(g.group.size).toBe(0);
    g.group.close();
  });

  it('notices a task process hosting a whole group killed with kill -9, and reclaims every frame', async () => {
    const group = createChannelGroup({ transport: 'process', capacity: 8 });
    const reasons: string[] = [];
    const drivers = Array.from({ length: 5 }, () =>
      createChannel({
        transport: 'process',
        frameCount: 16,
        frameSize: 128,
        group,
        onDisconnect: (r) => reasons.push(r),
      }),
    );
    const task = spawnProcess(
      new URL('./fixtures/group-task-process.ts', import.meta.url),
      [JSON.stringify(drivers.map((d) => d.handle))],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    children.push(task);
    await once(task, 'message');
    // Everyone attached: the names can go.
    group.unlinkName();
    for (const d of drivers) d.unlinkName();
    for (const d of drivers) d.watchProcess(task.pid!, 10);
    let sent = 0;
    for (let round = 0; round < 50; round++) {
      for (const d of drivers) {
        if (d.receive(new Uint8Array([round]))) sent++;
        d.flush(false);
      }
      group.kick();
      await tick();
    }
    // The task process reads at its own pace (on a loaded machine it may not have run yet): ask until it has.
    let reply = { received: 0 };
    const deadline = Date.now() + 10_000;
    while (reply.received < sent && Date.now() < deadline) {
      task.send('count');
      [reply] = (await once(task, 'message')) as [{ received: number }];
      if (reply.received < sent) await new Promise((r) => setTimeout(r, 5));
    }
    expect(reply.received).toBe(sent);
    task.kill('SIGKILL');
    await until(() => drivers.every((d) => !d.connected), 'every member disconnected');
    expect(reasons).toEqual(drivers.map(() => `task process ${task.pid} exited`));
    for (const d of drivers) {
      d.close();
      expect(d.ownership()).toMatchObject({ task: 0, driverRx: 0, driverTx: 0, reclaimed: 16 });
    }
    expect(group.size).toBe(0);
    group.close();
    expect(() => SharedMemory.open((group.handle as { name: string }).name)).toThrow(/EXO_ERR_IPC_NATIVE/);
  });

  it('marks a member for the driver when its task posts a request or frames to send', () => {
    const group = createChannelGroup({ capacity: 64 });
    const d = createChannel({ frameCount: 8, frameSize: 64, group });
    const t = attachChannel(d.handle, { rxBuffers: 2 });
    const seen: number[] = [];
    expect(group.takeDriverPending((m) => seen.push(m))).toBe(0);
    const off = t.alloc();
    t.send(off, 10);
    t.flush();
    expect(group.takeDriverPending((m) => seen.push(m))).toBe(1);
    expect(seen).toEqual([d.member]);
    expect(d.takePosted()).toBe(true);
    expect(d.takePosted()).toBe(false);
    // Taken means cleared: nothing new, nothing reported.
    expect(group.takeDriverPending((m) => seen.push(m))).toBe(0);
    t.close();
    d.close();
    group.close();
  });
});
