import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ringRun } from '../src/bench/ipc.ts';
import { BATCH, frameSizeFor, initRingPair, ringPairLayout, runConsumer, runProducer } from '../src/bench/ring-pair.ts';
import { atomicsDoorbell } from '../src/doorbell.ts';
import { IpcError } from '../src/errors.ts';
import { RingHeader, ringBytes } from '../src/layout.ts';
import { PacketPool } from '../src/pool.ts';
import { initRing, RingConsumer, RingProducer } from '../src/ring.ts';
import { ViewCache } from '../src/views.ts';

/** A ring whose free-running indices both start at `start` (near 2^32 to cross the u32 wrap too). */
function pair(capacity: number, slotSize: number, start = 0) {
  const buffer = new SharedArrayBuffer(ringBytes(capacity, slotSize));
  initRing(buffer, 0, capacity, slotSize);
  const u32 = new Uint32Array(buffer);
  u32[RingHeader.PRODUCER >> 2] = start >>> 0;
  u32[RingHeader.CONSUMER >> 2] = start >>> 0;
  return {
    buffer,
    p: new RingProducer({ buffer, capacity, slotSize }),
    c: new RingConsumer({ buffer, capacity, slotSize }),
  };
}

/** Slot `k` of a test stream: every word distinct, so a misplaced word shows. */
function fill(dst: Uint32Array, at: number, slots: number, sw: number, first: number): void {
  for (let k = 0; k < slots; k++) for (let w = 0; w < sw; w++) dst[at + k * sw + w] = ((first + k) * 1000 + w) >>> 0;
}

describe('bulk and burst copies of long runs (one TypedArray.set per contiguous segment)', () => {
  it('splits a run at the ring wrap and keeps slot order, for descriptor and control-sized slots', () => {
    for (const slotSize of [16, 32, 256]) {
      const sw = slotSize / 4;
      const capacity = 64;
      const { p, c } = pair(capacity, slotSize);
      const src = new Uint32Array(capacity * sw);
      const dst = new Uint32Array(capacity * sw);
      let sent = 0;
      let got = 0;
      // Runs of 40 slots against a capacity of 64: every other run crosses the wrap, at a different place.
      for (let round = 0; round < 50; round++) {
        fill(src, 0, 40, sw, sent);
        expect(p.enqueueBulk(src, 40)).toBe(true);
        sent += 40;
        expect(c.dequeueBulk(dst, 40)).toBe(true);
        for (let k = 0; k < 40; k++) expect(dst[k * sw + sw - 1]).toBe(((got + k) * 1000 + sw - 1) >>> 0);
        expect([...dst.subarray(0, 40 * sw)]).toEqual([...src.subarray(0, 40 * sw)]);
        got += 40;
      }
    }
  });

  it('copies from and to an offset inside the caller arrays', () => {
    const { p, c } = pair(32, 16);
    const src = new Uint32Array(200);
    fill(src, 36, 30, 4, 7);
    expect(p.enqueueBurst(src, 30, 36)).toBe(30);
    const dst = new Uint32Array(300);
    expect(c.dequeueBurst(dst, 30, 100)).toBe(30);
    expect([...dst.subarray(100, 220)]).toEqual([...src.subarray(36, 156)]);
    expect(dst[99]).toBe(0);
    expect(dst[220]).toBe(0);
  });

  it('bulk is all or nothing: a refused bulk changes nothing on either side', () => {
    const { buffer, p, c } = pair(64, 16);
    const src = new Uint32Array(64 * 4);
    fill(src, 0, 64, 4, 0);
    expect(p.enqueueBulk(src, 50)).toBe(true);
    const before = new Uint32Array(buffer).slice();
    expect(p.enqueueBulk(src, 15)).toBe(false);
    expect(new Uint32Array(buffer)).toEqual(before);
    expect(p.staged).toBe(0);
    const dst = new Uint32Array(64 * 4);
    expect(c.dequeueBulk(dst, 51)).toBe(false);
    expect(new Uint32Array(buffer)).toEqual(before);
    expect(c.ready()).toBe(50);
    expect(c.dequeueBulk(dst, 50)).toBe(true);
    expect([...dst.subarray(0, 200)]).toEqual([...src.subarray(0, 200)]);
  });

  it('burst moves as many as fit, and as many as there are', () => {
    const { p, c } = pair(64, 16);
    const src = new Uint32Array(100 * 4);
    fill(src, 0, 100, 4, 0);
    expect(p.enqueueBurst(src, 100)).toBe(64);
    const dst = new Uint32Array(100 * 4);
    expect(c.dequeueBurst(dst, 20)).toBe(20);
    expect(p.enqueueBurst(src, 100, 64 * 4)).toBe(20);
    expect(c.dequeueBurst(dst, 100, 20 * 4)).toBe(64);
    expect([...dst.subarray(0, 84 * 4)]).toEqual([...src.subarray(0, 84 * 4)]);
  });

  it('refuses a caller array too short for the slots it would move, with a typed error and no move', () => {
    const { p, c } = pair(64, 16);
    expect(() => p.enqueueBulk(new Uint32Array(100), 30)).toThrow(/EXO_ERR_IPC_INVALID_ARGUMENT/);
    expect(() => p.enqueueBurst(new Uint32Array(200), 30, 100)).toThrow(IpcError);
    expect(c.ready()).toBe(0);
    expect(p.enqueueBulk(new Uint32Array(120), 30)).toBe(true);
    expect(() => c.dequeueBurst(new Uint32Array(100), 30)).toThrow(/EXO_ERR_IPC_INVALID_ARGUMENT/);
    expect(c.ready()).toBe(30);
    expect(() => c.dequeueBulk(new Uint32Array(120), 30, 1)).toThrow(IpcError);
  });

  it('behaves as a FIFO queue under any mix of operations and sizes (model check, indices across 2^32)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constantFrom('enqueueBulk', 'enqueueBurst'), n: fc.integer({ min: 0, max: 80 }) }),
      fc.record({ kind: fc.constantFrom('dequeueBulk', 'dequeueBurst'), n: fc.integer({ min: 0, max: 80 }) }),
      fc.record({ kind: fc.constant('push'), n: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('pop'), n: fc.integer({ min: 1, max: 3 }) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(16, 32, 256),
        fc.constantFrom(1, 4, 32, 64),
        fc.integer({ min: -300, max: 300 }),
        fc.integer({ min: 0, max: 7 }),
        fc.array(op, { maxLength: 60 }),
        (slotSize, capacity, start, at, ops) => {
          const sw = slotSize / 4;
          const { p, c } = pair(capacity, slotSize, start);
          const model: number[] = [];
          let next = 1;
          const src = new Uint32Array((80 + at) * sw);
          const dst = new Uint32Array((80 + at) * sw);
          const check = (n: number) => {
            for (let k = 0; k < n; k++) {
              const id = model.shift()!;
              for (let w = 0; w < sw; w++) expect(dst[(at + k) * sw + w]).toBe((id * 1000 + w) >>> 0);
            }
          };
          for (const { kind, n } of ops) {
            const free = capacity - model.length;
            if (kind === 'enqueueBulk' || kind === 'enqueueBurst') {
              fill(src, at * sw, n, sw, next);
              const moved =
                kind === 'enqueueBulk' ? (p.enqueueBulk(src, n, at * sw) ? n : 0) : p.enqueueBurst(src, n, at * sw);
              expect(moved).toBe(kind === 'enqueueBulk' ? (n <= free ? n : 0) : Math.min(n, free));
              for (let k = 0; k < moved; k++) model.push(next + k);
              next += n;
            } else if (kind === 'dequeueBulk' || kind === 'dequeueBurst') {
              const have = model.length;
              const moved =
                kind === 'dequeueBulk' ? (c.dequeueBulk(dst, n, at * sw) ? n : 0) : c.dequeueBurst(dst, n, at * sw);
              expect(moved).toBe(kind === 'dequeueBulk' ? (n <= have ? n : 0) : Math.min(n, have));
              check(moved);
            } else if (kind === 'push') {
              if (sw !== 4) continue;
              for (let i = 0; i < n; i++) {
                const ok = p.push(next * 1000, next * 1000 + 1, next * 1000 + 2, next * 1000 + 3);
                expect(ok).toBe(model.length < capacity);
                if (ok) model.push(next);
                next++;
              }
              p.publish();
            } else {
              for (let i = 0; i < n; i++) {
                const ok = c.pop(dst, at * sw);
                expect(ok).toBe(model.length > 0);
                if (ok) check(1);
              }
              c.release();
            }
            // ready(n) may answer from its cached view once that offers n; asking for more forces a fresh read.
            expect(c.ready(capacity + 1)).toBe(model.length);
            expect(p.ready(capacity + 1)).toBe(capacity - model.length);
            expect(p.corrupt || c.corrupt).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('ViewCache', () => {
  it('hands back the same view for a range it has seen, and a correct new one otherwise', () => {
    const cache = new ViewCache<Uint32Array>(4);
    const a = new Uint32Array(100).map((_, i) => i);
    const v = cache.get(a, 10, 20);
    expect(cache.get(a, 10, 20)).toBe(v);
    expect([...v]).toEqual([...a.subarray(10, 30)]);
    expect(cache.get(a, 0, 100)).toBe(a);
    const b = new Uint32Array(100);
    expect(cache.get(b, 10, 20)).not.toBe(v);
    for (let i = 0; i < 8; i++) expect([...cache.get(a, i, 3)]).toEqual([i, i + 1, i + 2]);
    // Evicted by now (4 entries), but still right.
    expect([...cache.get(a, 10, 20)]).toEqual([...a.subarray(10, 30)]);
  });
});

describe('PacketPool runs', () => {
  const descriptors = (offsets: number[]) => {
    const d = new Uint32Array(offsets.length * 4);
    offsets.forEach((o, i) => {
      d[i * 4] = o;
    });
    return d;
  };

  it('finds runs of consecutive frames in a batch of descriptors', () => {
    const pool = new PacketPool(new SharedArrayBuffer(64 * 16), 0, 64, 16);
    const d = descriptors([128, 192, 256, 0, 64, 640, 704, 768, 832]);
    expect(pool.runLength(d, 0, 9)).toBe(3);
    expect(pool.runLength(d, 3, 6)).toBe(2);
    expect(pool.runLength(d, 5, 4)).toBe(4);
    expect(pool.runLength(d, 5, 2)).toBe(2);
    expect(pool.runLength(d, 8, 1)).toBe(1);
  });

  it('copies a run in and out with one call, and refuses ranges outside the pool or the array', () => {
    const buffer = new SharedArrayBuffer(4096 + 64 * 16);
    const pool = new PacketPool(buffer, 4096, 64, 16);
    const src = new Uint8Array(64 * 4).map((_, i) => i);
    pool.writeRun(128, src, 64, 192);
    expect([...new Uint8Array(buffer, 4096 + 128, 192)]).toEqual([...src.subarray(64, 256)]);
    const dst = new Uint8Array(300);
    pool.readRun(128, dst, 8, 192);
    expect([...dst.subarray(8, 200)]).toEqual([...src.subarray(64, 256)]);
    expect(() => pool.writeRun(64 * 15, src, 0, 128)).toThrow(/EXO_ERR_IPC_INVALID_ARGUMENT/);
    expect(() => pool.readRun(0, dst, 200, 128)).toThrow(IpcError);
    expect(() => pool.writeRun(-64, src, 0, 64)).toThrow(IpcError);
  });
});

describe('the benchmark ring pair', () => {
  it('moves every message intact through a pool smaller than the stream, in batches and alone', () => {
    // Both ends in one thread would deadlock on a blocking wait, so each runs with a ring that never makes it
    // wait: the producer first, into a ring pair deep enough for the whole stream, then the consumer.
    for (const payload of [64, 1500]) {
      const count = 3000;
      const l = ringPairLayout(4096, frameSizeFor(payload));
      const buffer = new SharedArrayBuffer(l.size);
      initRingPair(buffer, l);
      expect(runProducer(buffer, l, atomicsDoorbell, count, payload, 256)).toBe(0);
      const { sum, bad, waits } = runConsumer(buffer, l, atomicsDoorbell, count, payload, 256);
      expect(bad).toBe(0);
      expect(waits).toBe(0);
      expect(sum).toBe((count * (count - 1)) / 2);
    }
    expect(BATCH).toBeGreaterThan(32);
  });

  it('between threads and between processes, wraps its pool hundreds of times and delivers every message', async () => {
    // ringRun throws if the payload checksum or any descriptor/payload pair does not match.
    for (const transport of ['thread', 'process'] as const) {
      const { rate } = await ringRun(transport, 300_000, 64, 512, 64);
      expect(rate).toBeGreaterThan(0);
    }
    const { rate } = await ringRun('thread', 20_000, 1500, 64, 16);
    expect(rate).toBeGreaterThan(0);
  }, 60_000);
});

describe('ViewCache with a home array', () => {
  it('remembers one view per aligned start of its home array, however many starts a stream walks through', () => {
    const home = new Uint32Array(4096).map((_, i) => i);
    const cache = new ViewCache<Uint32Array>(2, home, 64);
    const first = Array.from({ length: 64 }, (_, k) => cache.get(home, k * 64, 64));
    for (let k = 0; k < 64; k++) {
      expect(cache.get(home, k * 64, 64)).toBe(first[k]);
      expect(first[k][0]).toBe(k * 64);
    }
    // Another length at the same start replaces the view; unaligned starts go through the small cache.
    expect([...cache.get(home, 64, 3)]).toEqual([64, 65, 66]);
    expect([...cache.get(home, 65, 3)]).toEqual([65, 66, 67]);
  });
});
