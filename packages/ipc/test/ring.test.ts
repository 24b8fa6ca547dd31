import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { IpcError } from '../src/errors.ts';
import { RingHeader, ringBytes } from '../src/layout.ts';
import { initRing, RingConsumer, RingProducer } from '../src/ring.ts';
import { spawnWorker } from '../src/spawn.ts';
import type { StressResult } from './fixtures/stress.ts';

function pair(capacity: number, slotSize = 16) {
  const buffer = new SharedArrayBuffer(ringBytes(capacity, slotSize));
  initRing(buffer, 0, capacity, slotSize);
  return {
    buffer,
    p: new RingProducer({ buffer, capacity, slotSize }),
    c: new RingConsumer({ buffer, capacity, slotSize }),
  };
}

describe('SPSC ring', () => {
  it('stages pushes until publish, then delivers them in order', () => {
    const { p, c } = pair(4);
    expect(p.push(1, 2, 3, 4)).toBe(true);
    expect(p.staged).toBe(1);
    expect(c.ready()).toBe(0);
    p.publish();
    expect(c.ready()).toBe(1);
    const out = new Uint32Array(4);
    expect(c.pop(out)).toBe(true);
    expect([...out]).toEqual([1, 2, 3, 4]);
    expect(c.pop(out)).toBe(false);
  });

  it('is full at capacity, and wraps around many times with free-running indices', () => {
    const { p, c } = pair(8);
    const src = new Uint32Array(8 * 4).map((_, i) => i);
    const dst = new Uint32Array(8 * 4);
    for (let round = 0; round < 1000; round++) {
      expect(p.enqueueBurst(src, 5)).toBe(5);
      expect(p.enqueueBurst(src, 5, 20)).toBe(3);
      expect(p.enqueueBulk(src, 1)).toBe(false);
      expect(p.push(0, 0, 0, 0)).toBe(false);
      expect(c.dequeueBulk(dst, 9)).toBe(false);
      expect(c.dequeueBurst(dst, 8)).toBe(8);
      expect([...dst.subarray(0, 20)]).toEqual([...src.subarray(0, 20)]);
      expect([...dst.subarray(20, 32)]).toEqual([...src.subarray(20, 32)]);
    }
  });

  it('survives the u32 wrap of its indices', () => {
    const capacity = 4;
    const buffer = new SharedArrayBuffer(ringBytes(capacity, 16));
    initRing(buffer, 0, capacity);
    const u32 = new Uint32Array(buffer);
    u32[RingHeader.PRODUCER >> 2] = 0xfffffffe;
    u32[RingHeader.CONSUMER >> 2] = 0xfffffffe;
    const p = new RingProducer({ buffer, capacity });
    const c = new RingConsumer({ buffer, capacity });
    const out = new Uint32Array(4);
    for (let i = 0; i < 10; i++) {
      expect(p.push(i, 0, 0, 0)).toBe(true);
      p.publish();
      expect(c.pop(out)).toBe(true);
      c.release();
      expect(out[0]).toBe(i);
    }
    expect(u32[RingHeader.PRODUCER >> 2]).toBe(8);
  });

  it('moves non-descriptor slots in place (reserve/peek)', () => {
    const { p, c } = pair(2, 64);
    const s = p.reserve();
    p.slotBytes.set([9, 8, 7], s * 4);
    p.publish();
    const r = c.peek();
    expect([...c.slotBytes.subarray(r * 4, r * 4 + 3)]).toEqual([9, 8, 7]);
    c.release();
    expect(p.ready(2)).toBe(2);
  });

  it('marks the ring corrupt when the peer writes an impossible index, and never reads garbage', () => {
    const { buffer, p, c } = pair(8);
    const u32 = new Uint32Array(buffer);
    u32[RingHeader.PRODUCER >> 2] = 1000; // the producer claims more than a capacity
    expect(c.ready()).toBe(0);
    expect(c.corrupt).toBe(true);
    expect(c.dequeueBurst(new Uint32Array(4), 1)).toBe(0);
    expect(p.enqueueBurst(new Uint32Array(64), 16)).toBe(8);
    u32[RingHeader.CONSUMER >> 2] = 12; // the consumer claims to have read what was never published
    expect(p.ready(1)).toBe(0);
    expect(p.corrupt).toBe(true);
  });

  it('rejects wrong shapes and headers with typed errors', () => {
    const buffer = new SharedArrayBuffer(4096);
    expect(() => initRing(buffer, 0, 3)).toThrow(IpcError);
    expect(() => initRing(buffer, 8, 4)).toThrow(/EXO_ERR_IPC_INVALID_ARGUMENT/);
    expect(() => initRing(buffer, 0, 1024)).toThrow(/at least/);
    expect(() => new RingConsumer({ buffer, capacity: 4 })).toThrow(/EXO_ERR_IPC_BAD_LAYOUT/);
    initRing(buffer, 0, 4);
    expect(() => new RingConsumer({ buffer, capacity: 8 })).toThrow(/EXO_ERR_IPC_BAD_LAYOUT/);
    expect(() => new RingConsumer({ buffer, capacity: 4, slotSize: 32 })).toThrow(/EXO_ERR_IPC_BAD_LAYOUT/);
  });

  it('wakes an async waiter only when it asked, and honours timeouts and stop', async () => {
    const { buffer, p, c } = pair(4);
    const i32 = new Int32Array(buffer);
    expect(await c.readable(1, 5)).toBe(false);
    expect(i32[RingHeader.CONSUMER_WAITING >> 2]).toBe(0);
    const waiting = c.readable(1);
    expect(i32[RingHeader.CONSUMER_WAITING >> 2]).toBe(1);
    p.push(1, 1, 1, 1);
    p.publish();
    expect(i32[RingHeader.CONSUMER_WAITING >> 2]).toBe(0);
    expect(await waiting).toBe(true);
    let stopped = false;
    const w = p.writable(5, Number.POSITIVE_INFINITY, () => stopped);
    stopped = true;
    c.wakePeer();
    expect(await w).toBe(false);
  });
});

describe('busy-poll mode', () => {
  it('polls instead of sleeping: the data arrives and the producer never had to ring the bell', async () => {
    const capacity = 4;
    const buffer = new SharedArrayBuffer(ringBytes(capacity, 16));
    initRing(buffer, 0, capacity);
    const c = new RingConsumer({ buffer, capacity, spin: Number.POSITIVE_INFINITY });
    const started = new Int32Array(new SharedArrayBuffer(4));
    const w = spawnWorker(new URL('./fixtures/delayed-producer.ts', import.meta.url), {
      workerData: { buffer, capacity, started },
    });
    try {
      // Poll without limit only once the producer surely runs, so a worker that fails to start fails the test.
      const failed = once(w, 'error').then(([err]) => {
        throw err;
      });
      while (Atomics.load(started, 0) === 0) {
        await Promise.race([failed, new Promise((r) => setTimeout(r, 10))]);
      }
      expect(c.waitReadable()).toBe(true);
      const out = new Uint32Array(4);
      expect(c.pop(out)).toBe(true);
      expect(out[0]).toBe(42);
      expect(new Int32Array(buffer)[RingHeader.CONSUMER_BELL >> 2]).toBe(0);
    } finally {
      await once(w, 'exit');
    }
  });
});

describe('SPSC ring between threads', () => {
  it('moves 10 million messages with random batches and pauses: nothing lost, duplicated or corrupted', async () => {
    const capacity = 256;
    const count = 10_000_000;
    const buffer = new SharedArrayBuffer(ringBytes(capacity, 16));
    initRing(buffer, 0, capacity);
    const module = new URL('./fixtures/ring-thread-peer.ts', import.meta.url);
    const common = { buffer, capacity, count, seed: 0x1234, maxBatch: 64 };
    const consumer = spawnWorker(module, { workerData: { ...common, role: 'consumer' } });
    const producer = spawnWorker(module, { workerData: { ...common, role: 'producer', seed: 0x5678 } });
    try {
      const [[sent], [got]] = (await Promise.all([once(producer, 'message'), once(consumer, 'message')])) as [
        [{ checksum: number }],
        [StressResult],
      ];
      expect(got.firstError).toBe('');
      expect(got.errors).toBe(0);
      expect(got.count).toBe(count);
      expect(got.checksum).toBe(sent.checksum);
    } finally {
      await Promise.all([producer.terminate(), consumer.terminate()]);
    }
  });
});
