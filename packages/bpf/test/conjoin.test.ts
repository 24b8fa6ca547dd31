import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packetSet } from '../src/bench/packets.ts';
import { BpfError, conjoin, type Insn, interpret, type Program, verifyProgram } from '../src/index.ts';
import { programArb } from './_programs.ts';

const s = (code: number, k = 0): Insn => ({ code, jt: 0, jf: 0, k });

describe('conjoin', () => {
  const packets = packetSet(40, 5);

  it('accepts exactly when both accept, returning b value; stays verifiable', () => {
    const progs = fc
      .sample(programArb({ maxLength: 16 }), { seed: 4, numRuns: 3000 })
      .filter((p) => verifyProgram(p).ok);
    let both = 0;
    for (let i = 0; i + 1 < progs.length; i += 2) {
      const a = progs[i]!;
      const b = progs[i + 1]!;
      const c = conjoin(a, b);
      expect(verifyProgram(c)).toEqual({ ok: true });
      for (const pk of packets) {
        const va = interpret(a, pk.data, pk.wirelen, pk.data.length);
        const vb = interpret(b, pk.data, pk.wirelen, pk.data.length);
        const vc = interpret(c, pk.data, pk.wirelen, pk.data.length);
        expect(vc).toBe(va === 0 ? 0 : vb);
        if (va !== 0 && vb !== 0) both++;
      }
    }
    expect(both).toBeGreaterThan(100);
  });

  it('resets A and X only when b reads them first', () => {
    const a: Program = [s(0x00, 7), s(0x01, 9), s(0x06, 1)];
    expect(conjoin(a, [s(0x06, 5)]).length).toBe(3 + 1);
    expect(conjoin(a, [s(0x16)])).toHaveLength(3 + 2);
    expect(interpret(conjoin(a, [s(0x16)]), new Uint8Array(0), 0, 0)).toBe(0);
    expect(interpret(conjoin(a, [s(0x87), s(0x16)]), new Uint8Array(0), 0, 0)).toBe(0);
  });

  it('handles RET A in the first program', () => {
    const a: Program = [s(0x80), s(0x16)];
    const b: Program = [s(0x06, 77)];
    const c = conjoin(a, b);
    expect(interpret(c, new Uint8Array(0), 0, 0)).toBe(0);
    expect(interpret(c, new Uint8Array(0), 10, 0)).toBe(77);
  });

  it('throws typed errors for unverified inputs and results over 4096 instructions', () => {
    expect(() => conjoin([s(0x0e)], [s(0x06)])).toThrow(BpfError);
    const big = Array.from({ length: 3000 }, () => s(0x06, 1));
    try {
      conjoin(big, big);
      expect.unreachable();
    } catch (e) {
      expect((e as BpfError).code).toBe('EXO_ERR_BPF_TOO_LONG');
    }
  });
});
