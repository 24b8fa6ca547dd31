import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSim, patternBytes } from './helpers/sim.ts';

/*
 * Random fault plans, buffer sizes and close orders; every transfer must arrive intact and every connection
 * must end CLOSED on both sides. Seeded, so a failure replays exactly.
 */
describe('TCP under random faults (seeded property)', () => {
  it('always delivers intact and always closes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 1, max: 1_000_000 }),
          drop: fc.double({ min: 0, max: 0.2, noNaN: true }),
          reorder: fc.double({ min: 0, max: 0.2, noNaN: true }),
          dup: fc.double({ min: 0, max: 0.1, noNaN: true }),
          size: fc.integer({ min: 0, max: 60_000 }),
          back: fc.integer({ min: 0, max: 60_000 }),
          rcvBuf: fc.constantFrom(2048, 8192, 65536, 262144),
          sndBuf: fc.constantFrom(2048, 16384, 262144),
          serverClosesFirst: fc.boolean(),
        }),
        async (p) => {
          const sim = createSim({
            faults: {
              seed: p.seed,
              tx: { dropRate: p.drop, reorderRate: p.reorder, duplicateRate: p.dup },
              rx: { dropRate: p.drop, reorderRate: p.reorder, duplicateRate: p.dup },
            },
            a: { tcp: { receiveBuffer: p.rcvBuf, sendBuffer: p.sndBuf, maxRetries: 30 } },
            b: { tcp: { receiveBuffer: p.rcvBuf, sendBuffer: p.sndBuf, maxRetries: 30 } },
          });
          const up = patternBytes(p.size, p.seed);
          const down = patternBytes(p.back, p.seed + 1);
          let atServer: Uint8Array | null = null;
          let atClient: Uint8Array | null = null;
          let failure: unknown = null;
          const l = sim.b.tcpListen(80);
          l.accept()
            .then(async (s) => {
              const r = s.readAll();
              if (p.serverClosesFirst) {
                await s.write(down);
                s.end();
                atServer = await r;
              } else {
                atServer = await r;
                await s.write(down);
                s.end();
              }
            })
            .catch((e) => {
              failure = e;
            });
          sim.a
            .tcpConnect('10.0.0.2', 80)
            .then(async (s) => {
              const r = s.readAll();
              await s.write(up);
              s.end();
              atClient = await r;
            })
            .catch((e) => {
              failure = e;
            });
          await sim.until(() => failure !== null || (atServer !== null && atClient !== null), 3_600_000);
          if (failure) throw failure;
          expect(Buffer.from(atServer!).equals(Buffer.from(up))).toBe(true);
          expect(Buffer.from(atClient!).equals(Buffer.from(down))).toBe(true);
          // Both ends release their connections (TIME-WAIT included) once time passes.
          sim.faultA!.setEnabled(false);
          await sim.until(() => sim.a.tcpConnectionCount === 0 && sim.b.tcpConnectionCount === 0, 3_600_000);
          sim.close();
        },
      ),
      { numRuns: 60, seed: 20261127 },
    );
  }, 240_000);
});
