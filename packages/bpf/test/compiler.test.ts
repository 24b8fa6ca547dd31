import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcapFilter } from '../src/bench/libpcap-harness.ts';
import { packetSet } from '../src/bench/packets.ts';
import { MAX_SHARED_SHAPE_CHARS, MAX_SHARED_SHAPES, programShape, sharedShapeCacheStats } from '../src/compiler-js.ts';
import {
  BpfError,
  compileExpression,
  compileProgram,
  compileProgramShared,
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

/** Opcodes whose k is a data constant (pooled by the shared-shape compiler), and the values k may take. */
const DATA_K: Record<number, 'any' | 'nonzero' | 'shift'> = {
  6: 'any',
  0: 'any',
  1: 'any',
  4: 'any',
  20: 'any',
  36: 'any',
  52: 'nonzero',
  148: 'nonzero',
  84: 'any',
  68: 'any',
  164: 'any',
  100: 'shift',
  116: 'shift',
  21: 'any',
  37: 'any',
  53: 'any',
  69: 'any',
};

/** Deterministic 32-bit generator (xorshift), biased towards the edges of 32-bit arithmetic. */
function constants(seed: number): (kind: 'any' | 'nonzero' | 'shift') => number {
  let s = seed | 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const edges = [0, 1, 2, 17, 0x800, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe];
  return (kind) => {
    if (kind === 'shift') return next() % 32;
    const r = next();
    const v = r % 4 === 0 ? edges[(r >>> 2) % edges.length]! : r % 4 === 1 ? (r >>> 2) % 256 : next();
    return kind === 'nonzero' && v === 0 ? 1 : v;
  };
}

/** The same program with new data constants: same shape, so it shares the generated function. */
function reconstant(p: Program, k: (kind: 'any' | 'nonzero' | 'shift') => number): Program {
  return p.map((i) => (DATA_K[i.code] ? { ...i, k: k(DATA_K[i.code]!) } : i));
}

describe('shared-shape compiled engine', () => {
  it('agrees with the interpreter and libpcap on random verified programs', () => {
    const programs = fc
      .sample(programArb({ maxLength: 40 }), { seed: 4711, numRuns: 3000 })
      .filter((p) => verifyProgram(p).ok);
    expect(programs.length).toBeGreaterThan(800);
    const theirs = pcapFilter(programs, packets);
    programs.forEach((p, i) => {
      const f = compileProgramShared(p);
      packets.forEach((pk, j) => {
        const c = f(pk.data, pk.wirelen, pk.data.length);
        if (c !== theirs[i]![j] || c !== interpret(p, pk.data, pk.wirelen, pk.data.length))
          throw new Error(`program ${JSON.stringify(p)} packet ${j}: shared ${c}, libpcap ${theirs[i]![j]}`);
      });
    });
  });

  it('runs many programs of one shape with random constants as libpcap does, sharing one function', () => {
    const bases = [
      ...fc.sample(programArb({ maxLength: 30 }), { seed: 99, numRuns: 400 }).filter((p) => verifyProgram(p).ok),
      ...CORPUS.slice(0, 40).map((e) => compileExpression(e)),
    ].slice(0, 120);
    const k = constants(2026);
    const programs: Program[] = [];
    for (const base of bases) {
      const before = sharedShapeCacheStats().shapes;
      const variants = Array.from({ length: 12 }, () => reconstant(base, k));
      for (const v of variants) {
        expect(verifyProgram(v)).toEqual({ ok: true });
        expect(programShape(v).source).toBe(programShape(base).source);
        compileProgramShared(v);
      }
      // One new shape at most for the twelve (none when the shape was cached already).
      expect(sharedShapeCacheStats().shapes - before).toBeLessThanOrEqual(1);
      programs.push(...variants);
    }
    const theirs = pcapFilter(programs, packets);
    programs.forEach((p, i) => {
      const f = compileProgramShared(p);
      const g = compileProgram(p);
      packets.forEach((pk, j) => {
        const c = f(pk.data, pk.wirelen, pk.data.length);
        const r = g(pk.data, pk.wirelen, pk.data.length);
        if (c !== theirs[i]![j] || c !== r)
          throw new Error(
            `program ${JSON.stringify(p)} packet ${j}: shared ${c}, per-program ${r}, libpcap ${theirs[i]![j]}`,
          );
      });
    });
  });

  it('gives each of 1,000 port filters its own constant from one shape', () => {
    const template = compileExpression('udp dst port 54321');
    const port = (n: number): Program => template.map((i) => (i.k === 54321 ? { ...i, k: n } : i));
    const frame = (dport: number): Uint8Array => {
      const f = new Uint8Array(60);
      f.set([0x08, 0x00], 12);
      f.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17], 14);
      f.set([0x30, 0x39, dport >> 8, dport & 0xff], 34);
      return f;
    };
    compileProgramShared(port(1));
    const before = sharedShapeCacheStats().shapes;
    const filters = Array.from({ length: 1000 }, (_, i) => compileProgramShared(port(20000 + i)));
    expect(sharedShapeCacheStats().shapes).toBe(before);
    for (const i of [0, 1, 500, 999]) {
      expect(filters[i]!(frame(20000 + i), 60, 60)).toBe(262144);
      expect(filters[i]!(frame(20001 + i), 60, 60)).toBe(0);
    }
  });

  it('bounds its cache of shapes; filters of evicted shapes keep working', () => {
    // Each load offset is structure, so each of these is its own shape.
    const shape = (offset: number): Program => [
      { code: 0x28, jt: 0, jf: 0, k: offset },
      { code: 0x16, jt: 0, jf: 0, k: 0 },
    ];
    const first = compileProgramShared(shape(0));
    for (let i = 1; i <= MAX_SHARED_SHAPES + 50; i++) compileProgramShared(shape(i));
    const stats = sharedShapeCacheStats();
    expect(stats.shapes).toBeLessThanOrEqual(MAX_SHARED_SHAPES);
    expect(stats.chars).toBeLessThanOrEqual(MAX_SHARED_SHAPE_CHARS);
    expect(first(Uint8Array.from([1, 2]), 2, 2)).toBe(0x102);
    expect(compileProgramShared(shape(0))(Uint8Array.from([1, 2]), 2, 2)).toBe(0x102);
    // Large shapes are bounded by their total size as well.
    for (let i = 0; i < 200; i++) {
      const big: Insn[] = [];
      for (let j = 0; j < 4000; j++) big.push({ code: 0x30, jt: 0, jf: 0, k: i });
      big.push({ code: 0x16, jt: 0, jf: 0, k: 0 });
      compileProgramShared(big);
    }
    expect(sharedShapeCacheStats().chars).toBeLessThanOrEqual(MAX_SHARED_SHAPE_CHARS);
  });

  it('compiles the largest programs and refuses unverified ones like compileProgram', () => {
    const chain: Insn[] = [];
    for (let i = 0; i < 4094; i++) chain.push({ code: 0x15, jt: 0, jf: 1, k: i & 7 });
    chain.push({ code: 0x06, jt: 0, jf: 0, k: 1 }, { code: 0x06, jt: 0, jf: 0, k: 2 });
    const f = compileProgramShared(chain);
    for (const pk of packets)
      expect(f(pk.data, pk.wirelen, pk.data.length)).toBe(interpret(chain, pk.data, pk.wirelen, pk.data.length));
    expect(() =>
      compileProgramShared([
        { code: 0x34, jt: 0, jf: 0, k: 0 },
        { code: 0x06, jt: 0, jf: 0, k: 0 },
      ]),
    ).toThrow(BpfError);
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
