import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BpfError,
  BpfErrorCode,
  compileExpression,
  compileProgram,
  conjoin,
  decodeProgram,
  encodeProgram,
  formatProgram,
  interpret,
  type Program,
  parseProgramText,
  readCaptureFile,
  summarize,
  verifyProgram,
} from '../src/index.ts';

const docs = readFileSync(new URL('../../../docs/bpf.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('documents every code in docs/bpf.md', () => {
    for (const code of Object.values(BpfErrorCode)) expect(docs).toContain(`\`${code}\``);
  });
});

/** A table of wrong inputs for every public function: each gives a BpfError (or a verdict), never a crash. */
const junk: unknown[] = [
  undefined,
  null,
  0,
  'x',
  {},
  [],
  [null],
  [{ code: -1, jt: 0, jf: 0, k: 0 }],
  new Uint8Array(3),
];

describe('bad input to every public function', () => {
  const fns: [string, (x: unknown) => unknown][] = [
    ['encodeProgram', (x) => encodeProgram(x as Program)],
    ['decodeProgram', (x) => decodeProgram(x as Uint8Array)],
    ['formatProgram', (x) => formatProgram(x as Program, 'ddd')],
    ['parseProgramText', (x) => parseProgramText(x as string)],
    ['compileProgram', (x) => compileProgram(x as Program)],
    ['compileExpression', (x) => compileExpression(x as string)],
    ['conjoin', (x) => conjoin(x as Program, x as Program)],
    ['summarize', (x) => summarize(x as Program)],
    ['readCaptureFile', (x) => readCaptureFile(x as Uint8Array)],
  ];
  it.each(fns)('%s throws only BpfError', (_, fn) => {
    for (const x of junk) {
      try {
        fn(x);
      } catch (e) {
        expect(e, String(x)).toBeInstanceOf(BpfError);
      }
    }
  });

  it('verifyProgram returns a verdict for all of it', () => {
    for (const x of junk) expect(verifyProgram(x as Program).ok).toBe(false);
  });

  it('interpret handles hostile lengths without reading past the packet', () => {
    const p: Program = [
      { code: 0x20, jt: 0, jf: 0, k: 0 },
      { code: 0x16, jt: 0, jf: 0, k: 0 },
    ];
    const pkt = Uint8Array.from([1, 2, 3, 4]);
    for (const buflen of [-1, 0, 3, 4, 1e9, Number.NaN, 2 ** 32 + 4]) {
      const v = interpret(p, pkt, 4, buflen);
      expect(v === 0 || v === 0x01020304).toBe(true);
      expect(compileProgram(p)(pkt, 4, buflen)).toBe(v);
    }
  });

  it('readCaptureFile rejects pcapng, bad magic, and huge records', () => {
    expect(() => readCaptureFile(Uint8Array.from([0x0a, 0x0d, 0x0d, 0x0a, ...new Array(20).fill(0)]))).toThrow(
      /pcapng/,
    );
    expect(() => readCaptureFile(new Uint8Array(24))).toThrow(/magic/);
    const huge = new Uint8Array(40);
    const v = new DataView(huge.buffer);
    v.setUint32(0, 0xa1b2c3d4, true);
    v.setUint32(20, 1, true);
    v.setUint32(24 + 8, 0x7fffffff, true);
    expect(() => readCaptureFile(huge)).toThrow(/claims/);
  });
});
