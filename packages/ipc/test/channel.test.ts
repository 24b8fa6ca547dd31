import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createChannel, DriverChannel } from '../src/driver-channel.ts';
import { ChannelHeader, DescriptorStatus, RingHeader, RingId } from '../src/layout.ts';
import { spawnWorker } from '../src/spawn.ts';
import { attachChannel } from '../src/task-channel.ts';
import { serveUntilDisconnected } from './fixtures/driver-loop.ts';

function open(frameCount = 8, maxErrors = 16) {
  const driver = createChannel({ frameCount, frameSize: 256, maxErrors });
  const task = attachChannel(driver.handle, { rxBuffers: frameCount / 2 });
  return { driver, task };
}

describe('channel (thread transport, one thread)', () => {
  it('moves frames both ways and every frame comes back along the edge it left by', () => {
    const { driver, task } = open();
    expect(driver.attached).toBe(true);
    expect(task.available).toBe(4);
    // RX: the driver fills a frame the task offered.
    expect(driver.receive(new Uint8Array([1, 2, 3]), 77)).toBe(true);
    // Offers still in rx.free count as the task's until the driver takes them.
    expect(driver.ownership()).toEqual({ task: 8, driverRx: 0, driverTx: 0, reclaimed: 0 });
    expect(driver.takeRxBuffer()).toBeGreaterThanOrEqual(0);
    expect(driver.ownership()).toEqual({ task: 7, driverRx: 1, driverTx: 0, reclaimed: 0 });
    driver.flush();
    const rx = task.nextRx();
    expect([rx >= 0, task.rxLength, task.tag, task.status]).toEqual([true, 3, 77, DescriptorStatus.OK]);
    expect([...task.pool.frame(rx).subarray(0, 3)]).toEqual([1, 2, 3]);
    // TX: the task sends a frame, the driver completes it with a status.
    const tx = task.alloc();
    task.pool.frame(tx).set([9, 9], 0);
    expect(task.send(tx, 2, 5)).toBe(true);
    task.flush();
    const got = driver.nextTx();
    expect([got, driver.txLength, driver.txTag]).toEqual([tx, 2, 5]);
    expect(driver.ownership().driverTx).toBe(1);
    driver.completeTx(got, DescriptorStatus.DENIED);
    driver.flush();
    expect(task.nextCompletion()).toBe(tx);
    expect([task.tag, task.status]).toEqual([5, DescriptorStatus.DENIED]);
    expect(driver.ownership()).toEqual({ task: 7, driverRx: 1, driverTx: 0, reclaimed: 0 });
    expect(driver.errors).toBe(0);
  });

  it('drops a packet for a task that offers no empty frame, without touching its frames', () => {
    const driver = createChannel({ frameCount: 4, frameSize: 64 });
    attachChannel(driver.handle, { rxBuffers: 0 });
    expect(driver.receive(new Uint8Array(10))).toBe(false);
    expect(driver.ownership().task).toBe(4);
  });

  it('refuses to hand out a frame the driver does not hold (a driver bug), with a typed error', () => {
    const { driver } = open();
    expect(() => driver.deliverRx(0, 10)).toThrow(/EXO_ERR_IPC_NOT_OWNER/);
    expect(() => driver.completeTx(12345, 0)).toThrow(/EXO_ERR_IPC_NOT_OWNER/);
  });

  it('counts a double return, a never-owned frame, bad offsets and lengths, then disconnects past the limit', () => {
    const reasons: string[] = [];
    const driver = createChannel({ frameCount: 8, frameSize: 256, maxErrors: 4, onDisconnect: (r) => reasons.push(r) });
    const task = attachChannel(driver.handle, { rxBuffers: 1 });
    const offered = driver.takeRxBuffer();
    expect(offered).toBeGreaterThanOrEqual(0);
    task.postRx(offered); // the driver holds it already: a double return
    task.postRx(3); // not a frame start
    task.postRx(256 * 8); // outside the pool
    task.flush();
    expect(driver.takeRxBuffer()).toBe(-1);
    expect(driver.violationCounts()).toMatchObject({ notOwned: 1, badOffset: 2 });
    const f = task.alloc();
    task.send(f, 0); // a length of zero: handed back at once as INVALID
    task.flush();
    expect(driver.nextTx()).toBe(-1);
    driver.flush();
    expect(task.nextCompletion()).toBe(f);
    expect(task.status).toBe(DescriptorStatus.INVALID);
    expect(driver.errors).toBe(4);
    expect(driver.connected).toBe(true);
    task.send(f, 100000);
    task.flush();
    expect(driver.nextTx()).toBe(-1);
    expect(driver.connected).toBe(false);
    expect(reasons).toEqual(['more than 4 protocol violations']);
    expect(task.connected).toBe(false);
    // What the task held is reclaimed; the frame the driver still holds is reclaimed when it gives it back.
    expect(driver.ownership()).toMatchObject({ driverRx: 1, reclaimed: 7 });
    expect(driver.deliverRx(offered, 1)).toBe(false);
    expect(driver.ownership()).toEqual({ task: 0, driverRx: 0, driverTx: 0, reclaimed: 8 });
  });

  it('disconnects a task that scribbles over a ring index', () => {
    const { driver } = open();
    const buffer = (driver.handle as { buffer: SharedArrayBuffer }).buffer;
    const u32 = new Uint32Array(buffer);
    const txActive = driver.layout.rings[RingId.TX_ACTIVE].offset;
    u32[(txActive + RingHeader.PRODUCER) >> 2] = 0x80000000;
    expect(driver.nextTx()).toBe(-1);
    expect(driver.connected).toBe(false);
    expect(driver.violationCounts().ringCorrupt).toBe(1);
  });

  it('carries control requests and responses, and rejects a malformed one', () => {
    const { driver, task } = open();
    expect(task.request({ type: 1, id: 7, status: 0, payload: new TextEncoder().encode('attach') })).toBe(true);
    const req = driver.readRequest()!;
    expect([req.type, req.id, new TextDecoder().decode(req.payload)]).toEqual([1, 7, 'attach']);
    expect(driver.respond({ type: 2, id: 7, status: 0, payload: new Uint8Array(0) })).toBe(true);
    expect(task.readResponse()).toMatchObject({ type: 2, id: 7, status: 0 });
    expect(() => task.request({ type: 1, id: 1, status: 0, payload: new Uint8Array(300) })).toThrow(
      /EXO_ERR_IPC_INVALID_ARGUMENT/,
    );
    // Forge a length past the payload area.
    const buffer = (driver.handle as { buffer: SharedArrayBuffer }).buffer;
    task.request({ type: 1, id: 2, status: 0, payload: new Uint8Array(1) });
    const ring = driver.layout.rings[RingId.CTL_REQUEST];
    new Uint32Array(buffer)[(ring.offset + RingHeader.SIZE + 256 + 12) >> 2] = 9999;
    expect(driver.readRequest()).toBeUndefined();
    expect(driver.violationCounts().badControl).toBe(1);
  });

  it('refuses a second attach and a garbage header', () => {
    const { driver } = open();
    expect(() => attachChannel(driver.handle)).toThrow(/EXO_ERR_IPC_CLOSED/);
    const junk = new SharedArrayBuffer(8192);
    expect(() => attachChannel({ transport: 'thread', buffer: junk })).toThrow(/EXO_ERR_IPC_BAD_LAYOUT/);
    expect(() => attachChannel({ transport: 'thread', buffer: new ArrayBuffer(8) as never })).toThrow(
      /EXO_ERR_IPC_INVALID_ARGUMENT/,
    );
    new Uint32Array(junk)[ChannelHeader.MAGIC >> 2] = 0x434f5845;
    new Uint32Array(junk)[ChannelHeader.VERSION >> 2] = 1;
    new Uint32Array(junk)[ChannelHeader.SEGMENT_SIZE >> 2] = 1 << 30;
    expect(() => attachChannel({ transport: 'thread', buffer: junk })).toThrow(/EXO_ERR_IPC_BAD_LAYOUT/);
  });

  it('wakes a driver waiting for work when the task sends, and a task when the driver closes', async () => {
    const { driver, task } = open();
    expect(driver.hasWork()).toBe(false); // rx offers are not work
    expect(driver.rxBuffersOffered()).toBe(4);
    expect(await driver.work(5)).toBe(false);
    const waiting = driver.work();
    task.send(task.alloc(), 10);
    task.flush();
    expect(await waiting).toBe(true);
    const taskWaiting = task.work();
    driver.close();
    expect(await taskWaiting).toBe(false);
    expect(task.connected).toBe(false);
    expect(driver.ownership().reclaimed).toBe(8);
  });

  it('keeps channels isolated: a stalled task fills only its own rings', () => {
    const a = open(4);
    const b = open(4);
    // Task a never drains: after its offered frames are used up the driver drops for a only.
    for (let i = 0; i < 10; i++) {
      a.driver.receive(new Uint8Array([i]));
      expect(b.driver.receive(new Uint8Array([i]))).toBe(true);
      b.driver.flush();
      const off = b.task.nextRx();
      b.task.postRx(off);
      b.task.flush();
    }
    expect(a.driver.ownership()).toMatchObject({ task: 4, driverRx: 0 });
    expect(b.driver.errors + a.driver.errors).toBe(0);
  });

  it('is what createChannel returns', () => {
    expect(createChannel()).toBeInstanceOf(DriverChannel);
  });
});

describe('channel between threads', () => {
  it('checks every frame a task thread sends, then reclaims every frame when the worker is stopped mid-stream', async () => {
    const frameCount = 64;
    const driver = createChannel({ frameCount, frameSize: 2048 });
    const worker = spawnWorker(new URL('./fixtures/task-thread.ts', import.meta.url), {
      workerData: { handle: driver.handle, hold: 5 },
    });
    try {
      await once(worker, 'message');
      worker.on('exit', () => driver.taskExited('task worker exited'));
      const target = 200_000;
      const { received, firstBad, held } = await serveUntilDisconnected(driver, target, () => {
        void worker.terminate();
      });
      expect(firstBad).toBe('');
      expect(received).toBeGreaterThanOrEqual(target);
      expect(driver.disconnectReason).toBe('task worker exited');
      for (const off of held) expect(driver.completeTx(off)).toBe(false);
      expect(driver.ownership()).toEqual({ task: 0, driverRx: 0, driverTx: 0, reclaimed: frameCount });
    } finally {
      await worker.terminate();
      driver.close();
    }
  });
});
