import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packetSet } from '../src/bench/packets.ts';
import {
  BpfError,
  compileExpression,
  conjoin,
  interpret,
  type Program,
  summarize,
  summaryAdmits,
  verifyProgram,
} from '../src/index.ts';
import { CORPUS } from './_corpus.ts';
import { programArb } from './_programs.ts';

const packets = packetSet(500, 31);

function soundOn(p: Program, label: string): { admitted: number; accepted: number } {
  const s = summarize(p);
  let admitted = 0;
  let accepted = 0;
  for (const pk of packets) {
    const ok = summaryAdmits(s, pk.data, pk.data.length);
    if (ok) admitted++;
    if (interpret(p, pk.data, pk.wirelen, pk.data.length) !== 0) {
      accepted++;
      if (!ok)
        throw new Error(`${label}: accepted a packet its summary rules out: ${Buffer.from(pk.data).toString('hex')}`);
    }
  }
  return { admitted, accepted };
}

describe('summarize', () => {
  it('is sound on every corpus expression, and prunes most non-matching packets', () => {
    let admitted = 0;
    let accepted = 0;
    for (const e of CORPUS) {
      const r = soundOn(compileExpression(e), e);
      admitted += r.admitted;
      accepted += r.accepted;
    }
    // Informative, not just sound: the summaries admit far fewer packets than all of them.
    expect(admitted).toBeLessThan(CORPUS.length * packets.length * 0.6);
    expect(admitted).toBeGreaterThanOrEqual(accepted);
  });

  it('is sound on random verified programs and on conjunctions', () => {
    const progs = fc
      .sample(programArb({ maxLength: 24 }), { seed: 5, numRuns: 2500 })
      .filter((p) => verifyProgram(p).ok);
    for (const [i, p] of progs.entries()) soundOn(p, `random ${i} ${JSON.stringify(p)}`);
    soundOn(conjoin(compileExpression('ip or ip6'), compileExpression('tcp port 80')), 'conjoin');
  });

  it('gives the DPF atoms of tcp dst port 80: both address families, the port header-length relative', () => {
    const s = summarize(compileExpression('tcp dst port 80'));
    expect(s.complete).toBe(true);
    expect(s.alternatives).toHaveLength(2);
    const v6 = s.alternatives.find((c) => c.some((a) => a.value === 0x86dd))!;
    expect(v6).toContainEqual({ location: { base: 'frame', offset: 56 }, size: 2, mask: 0xffff, value: 80 });
    const v4 = s.alternatives.find((c) => c.some((a) => a.value === 0x800))!;
    expect(v4).toContainEqual({
      location: { base: 'ipv4-ihl', ihlOffset: 14, offset: 16 },
      size: 2,
      mask: 0xffff,
      value: 80,
    });
    expect(v4).toContainEqual({ location: { base: 'frame', offset: 20 }, size: 2, mask: 0x1fff, value: 0 });
  });

  it('finds what every accepted packet shares', () => {
    const s = summarize(compileExpression('udp and dst host 10.0.0.2 and dst port 53'));
    expect(s.required).toContainEqual({
      location: { base: 'frame', offset: 30 },
      size: 4,
      mask: 0xffffffff,
      value: 0x0a000002,
    });
    expect(s.required).toContainEqual({ location: { base: 'frame', offset: 12 }, size: 2, mask: 0xffff, value: 0x800 });
    expect(summarize(compileExpression('tcp[tcpflags] & tcp-syn != 0')).required).toContainEqual({
      location: { base: 'ipv4-ihl', ihlOffset: 14, offset: 27 },
      size: 1,
      mask: 2,
      value: 2,
    });
  });

  it('says nothing is known for filters without equalities, and nothing accepted for ret #0', () => {
    expect(summarize(compileExpression('not arp')).alternatives).toEqual([[]]);
    expect(summarize(compileExpression('len > 100')).alternatives).toEqual([[]]);
    expect(summarize([{ code: 6, jt: 0, jf: 0, k: 0 }]).alternatives).toEqual([]);
    expect(summarize(compileExpression('ip and arp')).alternatives).toEqual([]);
  });

  it('refuses unverified programs', () => {
    expect(() => summarize([{ code: 0x0e, jt: 0, jf: 0, k: 0 }])).toThrow(BpfError);
  });
});
