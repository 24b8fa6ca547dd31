import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcapFilter } from '../src/bench/libpcap-harness.ts';
import { packetSet } from '../src/bench/packets.ts';
import {
  BpfError,
  compileExpression,
  compileProgram,
  compileProgramWasm,
  type Insn,
  interpret,
  type Program,
  verifyProgram,
} from '../src/index.ts';
import { CORPUS } from './_corpus.ts';
import { programArb } from './_programs.ts';

const packets = packetSet(60, 8);

describe('compiled engine', () => {
  it('agrees with the interpreter and libpcap on random verified programs', () => {
    const programs = fc
      .sample(programArb({ maxLength: 40 }), { seed: 2026, numRuns: 4000 })
      .filter((p) => verifyProgram(p).ok);
    expect(programs.length).toBeGreaterThan(1000);
    const theirs = pcapFilter(programs, packets);
    programs.forEach((p, i) => {
      const f = compileProgram(p);
      packets.forEach((pk, j) => {
        const c = f(pk.data, pk.wirelen, pk.data.length);
        const r = interpret(p, pk.data, pk.wirelen, pk.data.length);
        if (c !== r || c !== theirs[i]![j]) {
          throw new Error(
            `program ${JSON.stringify(p)} packet ${j}: compiled ${c}, interpreter ${r}, libpcap ${theirs[i]![j]}`,
          );
        }
      });
    });
  });

  it('agrees with the interpreter on every corpus expression and packet', () => {
    const many = packetSet(300, 77);
    for (const e of CORPUS) {
      const p = compileExpression(e);
      const f = compileProgram(p);
      for (const pk of many)
        expect(f(pk.data, pk.wirelen, pk.data.length)).toBe(interpret(p, pk.data, pk.wirelen, pk.data.length));
    }
  });

  it('handles buflen larger than the bytes, wirelen apart from buflen, and odd numbers', () => {
    const p: Program = [
      { code: 0x30, jt: 0, jf: 0, k: 3 },
      { code: 0x80, jt: 0, jf: 0, k: 0 },
      { code: 0x16, jt: 0, jf: 0, k: 0 },
    ];
    const f = compileProgram(p);
    expect(f(new Uint8Array(3), 99, 100)).toBe(0);
    expect(f(new Uint8Array(4), 99, 4)).toBe(99);
    expect(f(new Uint8Array(4), -1, 4)).toBe(interpret(p, new Uint8Array(4), -1, 4));
    expect(f(new Uint8Array(4), 2 ** 33 + 5, 4)).toBe(5);
  });

  it('compiles the largest programs (dispatch-loop form) with the same results', () => {
    const chain: Insn[] = [];
    for (let i = 0; i < 4094; i++) chain.push({ code: 0x15, jt: 0, jf: 1, k: i & 7 });
    chain.push({ code: 0x06, jt: 0, jf: 0, k: 1 }, { code: 0x06, jt: 0, jf: 0, k: 2 });
    const loads: Insn[] = [{ code: 0x30, jt: 0, jf: 0, k: 0 }];
    for (let i = 0; i < 4093; i++)
      loads.push({ code: 0x25, jt: 0, jf: 1, k: i % 256 }, { code: 0x04, jt: 0, jf: 0, k: 1 });
    const progs = [chain, loads.slice(0, 4095).concat([{ code: 0x16, jt: 0, jf: 0, k: 0 }])];
    for (const p of progs) {
      expect(verifyProgram(p)).toEqual({ ok: true });
      const f = compileProgram(p);
      for (const pk of packets)
        expect(f(pk.data, pk.wirelen, pk.data.length)).toBe(interpret(p, pk.data, pk.wirelen, pk.data.length));
    }
  });

  it('refuses unverified programs with a typed error naming the rule', () => {
    try {
      compileProgram([
        { code: 0x34, jt: 0, jf: 0, k: 0 },
        { code: 0x06, jt: 0, jf: 0, k: 0 },
      ]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BpfError);
      expect((e as BpfError).code).toBe('EXO_ERR_BPF_VERIFY');
      expect((e as BpfError).detail.rule).toBe('div-by-zero');
    }
  });
});

describe('WebAssembly engine (measured alternative)', () => {
  it('agrees with the interpreter and libpcap on random verified programs and corpus expressions', () => {
    const programs = fc
      .sample(programArb({ maxLength: 40 }), { seed: 77, numRuns: 2500 })
      .filter((p) => verifyProgram(p).ok);
    const theirs = pcapFilter(programs, packets);
    programs.forEach((p, i) => {
      const f = compileProgramWasm(p);
      packets.forEach((pk, j) => {
        const w = f(pk.data, pk.wirelen, pk.data.length);
        if (w !== theirs[i]![j])
          throw new Error(`program ${JSON.stringify(p)} packet ${j}: wasm ${w}, libpcap ${theirs[i]![j]}`);
      });
    });
    for (const e of CORPUS.slice(0, 60)) {
      const p = compileExpression(e);
      const f = compileProgramWasm(p);
      for (const pk of packets)
        expect(f(pk.data, pk.wirelen, pk.data.length)).toBe(interpret(p, pk.data, pk.wirelen, pk.data.length));
    }
    const big = new Uint8Array(200000);
    big[199999] = 9;
    const p: Program = [
      { code: 0x30, jt: 0, jf: 0, k: 199999 },
      { code: 0x16, jt: 0, jf: 0, k: 0 },
    ];
    expect(compileProgramWasm(p)(big, 200000, 200000)).toBe(9);
    expect(compileProgramWasm(p)(big, 200000, 199999)).toBe(0);
  });
});
