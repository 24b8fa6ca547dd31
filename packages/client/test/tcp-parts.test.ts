import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReassemblyBuffer } from '../src/net/tcp/reassembly.ts';
import { RtoEstimator } from '../src/net/tcp/rto.ts';
import { SendBuffer } from '../src/net/tcp/send-buffer.ts';
import { seqAdd, seqGt, seqLt } from '../src/net/tcp/seq.ts';

describe('sequence arithmetic', () => {
  it('compares across the 2^32 wrap', () => {
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqGt(5, 0xfffffff0)).toBe(true);
    expect(seqAdd(0xffffffff, 2)).toBe(1);
  });
});

describe('RFC 6298 estimator', () => {
  it('starts at 1 s, takes the first sample, smooths, backs off and clamps', () => {
    const r = new RtoEstimator({ minMs: 200, maxMs: 60_000 });
    expect(r.rto).toBe(1000);
    r.sample(100); // SRTT 100, RTTVAR 50: RTO = 100 + 4*50 = 300
    expect(r.srtt).toBe(100);
    expect(r.rto).toBe(300);
    r.sample(100); // RTTVAR = 0.75*50 + 0.25*0 = 37.5, SRTT 100: RTO = 250
    expect(r.rto).toBe(250);
    r.backoff();
    expect(r.rto).toBe(500);
    for (let i = 0; i < 20; i++) r.backoff();
    expect(r.rto).toBe(60_000);
    r.sample(1); // small RTTs are clamped to the minimum
    expect(r.rto).toBeGreaterThanOrEqual(200);
  });
});

describe('send buffer', () => {
  it('reads any window of what was pushed and consumes from the front', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (chunks, c, o, l) => {
          const b = new SendBuffer();
          const all = chunks.flatMap((x) => Array.from(x));
          for (const x of chunks) b.push(x);
          expect(b.length).toBe(all.length);
          const consumed = all.length ? c % (all.length + 1) : 0;
          b.consume(consumed);
          const rest = all.slice(consumed);
          const off = rest.length ? o % (rest.length + 1) : 0;
          const len = l % 60;
          expect(Array.from(b.read(off, len))).toEqual(rest.slice(off, off + len));
        },
      ),
    );
  });
});

describe('out-of-order reassembly', () => {
  it('reassembles any arrival order of overlapping pieces into the original stream', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (data, cuts, base) => {
          const buf = new ReassemblyBuffer(1 << 20);
          // Random pieces, then the whole stream in order as the final cover, so every byte arrives somewhere.
          const pieces = cuts.map(([a, b]) => {
            const s = a % data.length;
            const e = Math.min(data.length, s + 1 + (b % 40));
            return [s, e] as const;
          });
          pieces.push([0, data.length]);
          let next = base;
          const out: number[] = [];
          for (const [s, e] of pieces) {
            if (s === 0) {
              // in-order arrival at RCV.NXT: deliver directly, then drain what became contiguous
              const already = (next - base) >>> 0;
              if (e > already) {
                out.push(...data.subarray(already, e));
                next = seqAdd(base, e);
              }
              for (const d of buf.take(next)) {
                out.push(...d);
                next = seqAdd(next, d.length);
              }
            } else {
              buf.insert(seqAdd(base, s), data.subarray(s, e));
            }
          }
          for (const d of buf.take(next)) {
            out.push(...d);
            next = seqAdd(next, d.length);
          }
          expect(out).toEqual(Array.from(data.subarray(0, out.length)));
          expect(out.length).toBe(data.length);
        },
      ),
    );
  });
});
