import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyFrame } from '../../src/core/copy.ts';

describe('frame copies on the packet path', () => {
  it('copies exactly the frame, aligned or not, small or large, and nothing outside the destination frame', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        (length, srcShift, dstFrame, dstShift) => {
          const srcBuf = new SharedArrayBuffer(4096);
          const src = new Uint8Array(srcBuf, srcShift, 2048);
          for (let i = 0; i < src.length; i++) src[i] = (i * 31 + 7) & 0xff;
          const pool = new Uint8Array(new SharedArrayBuffer(4 * 2048 + 8), dstShift, 4 * 2048);
          pool.fill(0xee);
          const offset = dstFrame * 2048;
          copyFrame(src, length, pool, offset, 2048);
          let copied = true;
          for (let i = 0; i < length; i++) copied &&= pool[offset + i] === src[i];
          expect(copied).toBe(true);
          // Nothing before the frame and nothing in other frames is touched.
          let untouched = true;
          for (let i = 0; i < offset; i++) untouched &&= pool[i] === 0xee;
          for (let i = offset + 2048; i < pool.length; i++) untouched &&= pool[i] === 0xee;
          expect(untouched).toBe(true);
        },
      ),
      { seed: 11, numRuns: 300 },
    );
  });
});
