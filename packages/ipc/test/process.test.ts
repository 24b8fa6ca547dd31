import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannel } from '../src/driver-channel.ts';
import { ringBytes } from '../src/layout.ts';
import { initRing } from '../src/ring.ts';
import { SharedMemory } from '../src/shm.ts';
import { spawnProcess } from '../src/spawn.ts';
import { attachChannel } from '../src/task-channel.ts';
import { serveUntilDisconnected } from './fixtures/driver-loop.ts';
import type { StressResult } from './fixtures/stress.ts';

const children: ChildProcess[] = [];
const names: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of names.splice(0)) SharedMemory.unlink(n);
});

function child(module: string, args: (string | number)[]): ChildProcess {
  const c = spawnProcess(new URL(module, import.meta.url), args.map(String), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(c);
  return c;
}

describe('POSIX shared memory', () => {
  it('maps one segment twice, unmaps without leaving views on unmapped memory, and unlinks', () => {
    const a = SharedMemory.create(4096);
    names.push(a.name);
    const b = SharedMemory.open(a.name);
    new Uint32Array(a.buffer)[5] = 0xdeadbeef;
    expect(new Uint32Array(b.buffer)[5]).toBe(0xdeadbeef);
    const view = new Uint32Array(b.buffer);
    b.close();
    expect(b.mapped).toBe(false);
    expect(view.length).toBe(0);
    b.close();
    expect(() => SharedMemory.create(4096, a.name)).toThrow(/EXO_ERR_IPC_NATIVE/);
    expect(SharedMemory.unlink(a.name)).toBe(true);
    expect(SharedMemory.unlink(a.name)).toBe(false);
    expect(() => SharedMemory.open(a.name)).toThrow(/EXO_ERR_IPC_NATIVE/);
    expect(() => SharedMemory.open('no-slash')).toThrow(/EXO_ERR_IPC_INVALID_ARGUMENT/);
    a.close();
  });
});

describe('channel over POSIX shared memory, both ends in this process', () => {
  it('moves frames, and pending async waits end when either side closes and unmaps', async () => {
    const driver = createChannel({ transport: 'process', frameCount: 8, frameSize: 256 });
    const name = (driver.handle as { name: string }).name;
    names.push(name);
    const task = attachChannel(driver.handle, { rxBuffers: 2 });
    expect(driver.receive(new Uint8Array([4, 5, 6]))).toBe(true);
    const taskWaiting = task.work();
    driver.flush();
    expect(await taskWaiting).toBe(true);
    // The task attached: the name is gone, so no segment outlives a crashed driver.
    expect(() => SharedMemory.open(name)).toThrow(/EXO_ERR_IPC_NATIVE/);
    const off = task.nextRx();
    expect([...task.pool.frame(off).subarray(0, 3)]).toEqual([4, 5, 6]);
    const driverWaiting = driver.work();
    const closedTaskWaiting = task.work();
    task.close();
    expect(await closedTaskWaiting).toBe(false);
    expect(await driverWaiting).toBe(false); // the task closed: no more work
    expect(driver.connected).toBe(false);
    expect(driver.disconnectReason).toBe('the task closed the channel');
    expect(driver.ownership()).toMatchObject({ task: 0, driverRx: 0, driverTx: 0 });
    const afterClose = driver.work();
    driver.close();
    expect(await afterClose).toBe(false);
    expect(await driver.work()).toBe(false);
    expect(() => SharedMemory.open(name)).toThrow(/EXO_ERR_IPC_NATIVE/);
  });
});

describe('watching a task process', () => {
  it('disconnects at once when the pid is already gone, and when a live one exits', async () => {
    const gone = spawn(process.execPath, ['-e', '0']);
    await once(gone, 'exit');
    const reasons: string[] = [];
    const a = createChannel({ frameCount: 4, frameSize: 64, onDisconnect: (r) => reasons.push(r) });
    a.watchProcess(gone.pid!, 10);
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    children.push(live);
    const b = createChannel({ frameCount: 4, frameSize: 64, onDisconnect: (r) => reasons.push(r) });
    b.watchProcess(live.pid!);
    live.kill('SIGKILL');
    while (a.connected || b.connected) await new Promise((r) => setTimeout(r, 10));
    expect(reasons.sort()).toEqual([`task process ${gone.pid} exited`, `task process ${live.pid} exited`].sort());
    expect(b.ownership().reclaimed).toBe(4);
    a.close();
    b.close();
  });
});

describe('SPSC ring between processes', () => {
  it('moves 10 million messages with random batches and pauses: nothing lost, duplicated or corrupted', async () => {
    const capacity = 256;
    const count = 10_000_000;
    const shm = SharedMemory.create(ringBytes(capacity, 16));
    names.push(shm.name);
    initRing(shm.buffer, 0, capacity);
    const module = './fixtures/ring-process-peer.ts';
    const consumer = child(module, [shm.name, capacity, 'consumer', count, 0x1234, 64]);
    const producer = child(module, [shm.name, capacity, 'producer', count, 0x5678, 64]);
    const [[sent], [got]] = (await Promise.all([once(producer, 'message'), once(consumer, 'message')])) as [
      [{ checksum: number }],
      [StressResult],
    ];
    expect(got.firstError).toBe('');
    expect(got.errors).toBe(0);
    expect(got.count).toBe(count);
    expect(got.checksum).toBe(sent.checksum);
    shm.close();
  });
});

describe('channel between processes', () => {
  it('checks every frame a task process sends, then reclaims every frame after kill -9 mid-stream', async () => {
    const frameCount = 64;
    const reasons: string[] = [];
    const driver = createChannel({
      transport: 'process',
      frameCount,
      frameSize: 2048,
      onDisconnect: (r) => reasons.push(r),
    });
    const name = (driver.handle as { name: string }).name;
    names.push(name);
    const task = child('./fixtures/task-process.ts', [name, 5]);
    await once(task, 'message');
    const pid = task.pid!;
    driver.watchProcess(pid, 20);
    const target = 200_000;
    const { received, firstBad, held } = await serveUntilDisconnected(driver, target, () =>
      process.kill(pid, 'SIGKILL'),
    );
    expect(firstBad).toBe('');
    expect(received).toBeGreaterThanOrEqual(target);
    expect(reasons).toEqual([`task process ${pid} exited`]);
    // The driver gives back what it still held: every frame is accounted for as reclaimed.
    for (const off of held.splice(0)) expect(driver.completeTx(off)).toBe(false);
    expect(driver.ownership()).toEqual({ task: 0, driverRx: 0, driverTx: 0, reclaimed: frameCount });
    driver.close();
    expect(() => SharedMemory.open(name)).toThrow(/EXO_ERR_IPC_NATIVE/);
  });
});
