import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DESC_SIZE, DescOwn, FirstFrag, LastFrag, RingEnd } from '../src/nic/descriptor.ts';
import * as R from '../src/nic/registers.ts';
import { bareModel, frame, MAC } from './helpers.ts';

/**
 * The model's RX DMA against a reassembling reference driver: rings of random sizes whose buffers have
 * random sizes, frames of random lengths. Each frame must come back FS..LS, in order, with its FCS, or be
 * missed (MPC) without any descriptor touched.
 */
describe('RTL8169 model: RX over descriptors of random sizes', () => {
  it('hands back every frame whole (FS..LS, FCS, EOR kept) or misses it cleanly', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.integer({ min: 8, max: 200 }).map((n) => n * 8),
          { minLength: 2, maxLength: 12 },
        ),
        fc.array(fc.integer({ min: 60, max: 1514 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 3 }),
        (bufSizes, sizes, pollEvery) => {
          const m = bareModel();
          const n = bufSizes.length;
          const base = m.memory.alloc(n * DESC_SIZE, 256);
          const bufs = bufSizes.map((size) => m.memory.alloc(size, 8));
          const arm = (i: number) => {
            const d = base + i * DESC_SIZE;
            m.memory.view.setUint32(d + 8, bufs[i], true);
            m.memory.view.setUint32(d + 12, 0, true);
            m.memory.view.setUint32(d, (DescOwn | (i === n - 1 ? RingEnd : 0) | bufSizes[i]) >>> 0, true);
          };
          for (let i = 0; i < n; i++) arm(i);
          m.io.write32(R.RxDescAddrLow, base);
          m.io.write16(R.RxMaxSize, 16383);
          m.io.write32(R.RxConfig, R.AcceptMyPhys);
          m.io.write8(R.ChipCmd, R.CmdRxEnb);

          let cur = 0;
          const got: Uint8Array[] = [];
          /** A driver that reassembles FS..LS chains and re-arms every descriptor it consumes. */
          const poll = () => {
            for (;;) {
              const o1 = m.opts1(base + cur * DESC_SIZE);
              if (o1 & DescOwn) return;
              expect(o1 & FirstFrag).toBe(FirstFrag);
              const parts: Uint8Array[] = [];
              let total = 0;
              for (;;) {
                const d = base + cur * DESC_SIZE;
                const o = m.opts1(d);
                expect(o & DescOwn).toBe(0);
                expect(o & RingEnd).toBe(cur === n - 1 ? RingEnd : 0);
                const last = (o & LastFrag) !== 0;
                const len = last ? (o & 0x3fff) - total : o & 0x3fff;
                parts.push(m.memory.bytes.slice(bufs[cur], bufs[cur] + len));
                total += len;
                arm(cur);
                cur = (cur + 1) % n;
                if (last) {
                  expect(o & 0x3fff).toBe(total);
                  break;
                }
              }
              const whole = new Uint8Array(total);
              let off = 0;
              for (const p of parts) {
                whole.set(p, off);
                off += p.length;
              }
              got.push(whole);
            }
          };
          const sent: Uint8Array[] = [];
          sizes.forEach((size, i) => {
            const f = frame(MAC, size, i);
            sent.push(f);
            m.model.deliver(f);
            if (pollEvery && i % pollEvery === 0) poll();
          });
          poll();
          const missed = m.io.read32(R.RxMissed);
          expect(got.length + missed).toBe(sent.length);
          // What arrived is a subsequence of what was sent (in order), each frame whole with its FCS.
          let previous = -1;
          for (const g of got) {
            const body = g.subarray(0, g.length - 4);
            const seq = new DataView(g.buffer).getUint32(14);
            expect(seq).toBeGreaterThan(previous);
            previous = seq;
            expect(body).toEqual(sent[seq]);
            expect(new DataView(g.buffer).getUint32(g.length - 4, true)).toBe(zlibCrc32(sent[seq]));
          }
        },
      ),
      {
        seed: Number(process.env.EXO_PROPERTY_SEED ?? 20261127),
        numRuns: Number(process.env.EXO_PROPERTY_RUNS ?? 200),
      },
    );
  });
});
