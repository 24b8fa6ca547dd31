import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcapValidate } from '../src/bench/libpcap-harness.ts';
import { decodeProgram, type Insn, interpret, type Program, verifyProgram } from '../src/index.ts';
import { programArb } from './_programs.ts';

const s = (code: number, k = 0): Insn => ({ code, jt: 0, jf: 0, k });
const j = (code: number, k: number, jt: number, jf: number): Insn => ({ code, jt, jf, k });
const RET0 = s(0x06, 0);
const RET1 = s(0x06, 1);

/** [rule, a program that breaks it, the index named, a close program that passes]. */
const cases: [string, Program, number, Program][] = [
  ['length', [], 0, [RET0]],
  ['length', Array.from({ length: 4097 }, () => RET0), 4096, Array.from({ length: 4096 }, () => RET0)],
  ['field-range', [s(0x00, -1), RET0], 0, [s(0x00, 0xffffffff), RET0]],
  ['opcode', [s(0x0e), RET0], 0, [s(0x06), RET0]],
  ['opcode', [s(0x30 | 0x80), RET0], 0, [s(0x30), RET0]],
  ['opcode', [s(0xb0, 14), RET0], 0, [s(0xb1, 14), RET0]],
  ['opcode', [s(0x1e)], 0, [s(0x16)]],
  ['ancillary-load', [s(0x20, 0xfffff000), RET0], 0, [s(0x20, 0xffdfffff), RET0]],
  ['ancillary-load', [s(0x50, 0xffe00000), RET0], 0, [s(0x50, 0xffdfffff), RET0]],
  ['ancillary-load', [s(0xb1, 0xffffffff), RET0], 0, [s(0xb1, 1000), RET0]],
  ['scratch-index', [s(0x02, 16), RET0], 0, [s(0x02, 15), RET0]],
  ['scratch-index', [s(0x03, 16), RET0], 0, [s(0x03, 15), RET0]],
  ['scratch-index', [s(0x60, 99), RET0], 0, [s(0x02, 3), s(0x60, 3), RET0]],
  ['div-by-zero', [s(0x34, 0), RET0], 0, [s(0x34, 1), RET0]],
  ['div-by-zero', [s(0x94, 0), RET0], 0, [s(0x3c, 0), RET0]],
  ['shift-range', [s(0x64, 32), RET0], 0, [s(0x64, 31), RET0]],
  ['shift-range', [s(0x74, 0xffffffff), RET0], 0, [s(0x7c, 0), RET0]],
  ['jump-range', [s(0x05, 1), RET0], 0, [s(0x05, 0), RET0]],
  ['jump-range', [j(0x15, 0, 1, 0), RET0], 0, [j(0x15, 0, 0, 0), RET0]],
  ['jump-range', [j(0x15, 0, 0, 1), RET0], 0, [j(0x15, 0, 1, 0), RET0, RET1]],
  ['jump-range', [s(0x05, 0xffffffff), RET0], 0, [s(0x05, 0), RET0]],
  ['last-not-ret', [s(0x00, 1)], 0, [s(0x00, 1), s(0x16)]],
  ['last-not-ret', [RET0, s(0x00, 1)], 1, [s(0x00, 1), RET0]],
  ['scratch-uninit', [s(0x60, 0), RET0], 0, [s(0x02, 0), s(0x60, 0), RET0]],
  // A store on one branch only does not count.
  [
    'scratch-uninit',
    [j(0x15, 0, 0, 1), s(0x02, 5), s(0x61, 5), RET0],
    2,
    [j(0x15, 0, 0, 1), s(0x02, 5), s(0x02, 5), s(0x61, 5), RET0],
  ],
  // Jumping over the store breaks it; storing before the branch mends it.
  ['scratch-uninit', [s(0x05, 1), s(0x02, 1), s(0x60, 1), RET0], 2, [s(0x02, 1), s(0x05, 0), s(0x60, 1), RET0]],
];

describe('verifier rules', () => {
  it.each(cases)('%s: fails and names the instruction, and a close program passes', (rule, bad, index, good) => {
    const r = verifyProgram(bad);
    expect(r).toMatchObject({ ok: false, rule, index });
    if (!r.ok) expect(r.message).toMatch(new RegExp(`^instruction ${index}: `));
    expect(verifyProgram(good)).toEqual({ ok: true });
  });

  it('a state after RET does not flow into the next instruction', () => {
    // 0: jeq -> 1 or 3; 1: st M[0]; 2: ret; 3: ... M[0] read only reached through a path with the store?
    // Not here: the path 0 -> 3 has no store, so it must fail; but 1 -> 2 (ret) must not clear 4's state.
    const p: Program = [j(0x15, 0, 0, 2), s(0x02, 0), s(0x05, 1), RET0, s(0x60, 0), RET0];
    expect(verifyProgram(p)).toEqual({ ok: true });
  });

  it('accepts every opcode of the Linux whitelist in a sensible program and nothing else', () => {
    const accepted: number[] = [];
    for (let code = 0; code < 0x10000; code++) {
      const p: Program = [s(0x02, 0), s(0x03, 1), { code, jt: 0, jf: 0, k: 1 }, RET0, RET0];
      if (verifyProgram(p).ok) accepted.push(code);
    }
    expect(accepted.length).toBe(49);
  });

  it('never throws on hostile input', () => {
    for (const junk of [
      null,
      undefined,
      42,
      'ret',
      {},
      [null],
      [{}],
      [{ code: '6', jt: 0, jf: 0, k: 0 }],
      [[6, 0, 0, 0]],
    ]) {
      expect(verifyProgram(junk as unknown as Program).ok).toBe(false);
    }
  });

  it('random bytes as programs never crash it, and what it accepts runs in at most length steps', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 * 40 }), fc.uint8Array({ maxLength: 80 }), (raw, pkt) => {
        const bytes = raw.subarray(0, raw.length - (raw.length % 8));
        const p = decodeProgram(bytes);
        const r = verifyProgram(p);
        if (r.ok) expect(stepsOf(p, pkt)).toBeLessThanOrEqual(p.length);
      }),
      { seed: 20261127, numRuns: 3000 },
    );
  });

  it('programs it accepts run in at most length steps (biased generator)', () => {
    fc.assert(
      fc.property(programArb(), fc.uint8Array({ maxLength: 80 }), (p, pkt) => {
        if (verifyProgram(p).ok) expect(stepsOf(p, pkt)).toBeLessThanOrEqual(p.length);
      }),
      { seed: 7, numRuns: 3000 },
    );
  });
});

/** Counts the instructions the interpreter fetches: it reads p[pc] exactly once a step. */
function stepsOf(p: Program, pkt: Uint8Array): number {
  let steps = 0;
  const counted = new Proxy(p as Insn[], {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && /^\d+$/.test(prop)) steps++;
      return Reflect.get(target, prop, receiver);
    },
  });
  interpret(counted, pkt, pkt.length, pkt.length);
  return steps;
}

describe('verifier against libpcap bpf_validate', () => {
  it('rejects everything bpf_validate rejects (random and mutated programs)', () => {
    const progs = [
      ...fc.sample(programArb({ fix: true, anyOpcode: true }), { seed: 11, numRuns: 3000 }),
      ...fc.sample(programArb({ fix: false, anyOpcode: true }), { seed: 12, numRuns: 3000 }),
      ...fc.sample(programArb({ fix: false }), { seed: 13, numRuns: 2000 }),
    ];
    const theirs = pcapValidate(progs);
    let bothAccept = 0;
    let onlyLibpcap = 0;
    progs.forEach((p, i) => {
      const ours = verifyProgram(p).ok;
      if (ours && !theirs[i]) throw new Error(`accepted a program bpf_validate rejects: ${JSON.stringify(p)}`);
      if (ours) bothAccept++;
      else if (theirs[i]) onlyLibpcap++;
    });
    // The generators must exercise both sides, or this test proves nothing.
    expect(bothAccept).toBeGreaterThan(500);
    expect(onlyLibpcap).toBeGreaterThan(100);
  });
});
