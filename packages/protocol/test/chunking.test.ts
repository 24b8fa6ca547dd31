import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkReader, ChunkWriter, MAX_MESSAGE_BYTES, MORE, type Slot } from '../src/index.ts';

describe('chunked control messages', () => {
  it('carries any sequence of messages through a ring of any size, in order, intact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 300 }),
        (payloads, ringSize, chunk) => {
          const ring: Slot[] = [];
          const w = new ChunkWriter((s) => ring.length < ringSize && ring.push(s) > 0, chunk);
          const r = new ChunkReader();
          const got: Uint8Array[] = [];
          payloads.forEach((p, i) => {
            w.write({ type: 3, id: i + 1, status: 0, payload: p });
            // The reader drains while the writer pumps, as the two sides of a ring do.
            while (ring.length > 0 || w.pending > 0) {
              const s = ring.shift();
              if (s) {
                const m = r.push(s);
                expect(typeof m).not.toBe('string');
                if (m && typeof m === 'object') {
                  expect(m.id).toBe(got.length + 1);
                  got.push(m.payload);
                }
              }
              w.pump();
            }
          });
          expect(got).toEqual(payloads);
        },
      ),
      { seed: 4242, numRuns: 200 },
    );
  });

  it('refuses oversized and interleaved streams without throwing, and recovers', () => {
    const r = new ChunkReader();
    const big = new Uint8Array(60_000);
    expect(r.push({ type: 3 | MORE, id: 1, status: 0, payload: big })).toBeUndefined();
    expect(r.push({ type: 3 | MORE, id: 1, status: 0, payload: big })).toBe('too-large');
    expect(r.push({ type: 3 | MORE, id: 2, status: 0, payload: new Uint8Array(4) })).toBeUndefined();
    expect(r.push({ type: 4, id: 3, status: 0, payload: new Uint8Array(4) })).toBe('interleaved');
    const ok = r.push({ type: 5, id: 4, status: 0, payload: new Uint8Array([1]) });
    expect(ok).toMatchObject({ type: 5, id: 4 });
    expect(() =>
      new ChunkWriter(() => true, 10).write({
        type: 1,
        id: 1,
        status: 0,
        payload: new Uint8Array(MAX_MESSAGE_BYTES + 1),
      }),
    ).toThrow(RangeError);
  });
});
