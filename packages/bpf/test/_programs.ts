// Test helper: fast-check arbitraries for classic BPF programs, biased towards programs that verify
// and do interesting things on the generated packets.
import fc from 'fast-check';
import type { Insn, Program } from '../src/index.ts';

const VALID = [
  0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x94, 0x9c, 0x54, 0x5c, 0x44, 0x4c, 0xa4, 0xac, 0x64, 0x6c, 0x74,
  0x7c, 0x84, 0x20, 0x28, 0x30, 0x80, 0x40, 0x48, 0x50, 0x00, 0x60, 0x81, 0xb1, 0x01, 0x61, 0x02, 0x03, 0x07, 0x87,
  0x06, 0x16, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d,
];

/** Constants that hit edge cases: small offsets, header fields, boundaries of 32-bit arithmetic. */
const kArb = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 2, arbitrary: fc.constantFrom(0x800, 0x86dd, 0x806, 6, 17, 0x1fff, 0xffff, 0xff, 31, 32, 33) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0xffe00000, 65535, 65536),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);

const insnArb = (anyOpcode: boolean): fc.Arbitrary<Insn> =>
  fc.record({
    code: anyOpcode
      ? fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(...VALID) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
        )
      : fc.constantFrom(...VALID),
    jt: fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 4 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    ),
    jf: fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 4 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    ),
    k: kArb,
  });

/** Fixes up a raw instruction list so most programs are valid: jump offsets in range, scratch < 16, ends in RET. */
function shape(raw: Insn[], ret: Insn, fix: boolean): Program {
  const p = [...raw, ret];
  if (!fix) return p;
  return p.map((insn, i) => {
    const room = p.length - i - 2;
    const cls = insn.code & 7;
    let { jt, jf, k } = insn;
    if (cls === 5) {
      if (insn.code === 0x05) k = room >= 0 ? k % (room + 1) : 0;
      else {
        jt = room >= 0 ? jt % (room + 1) : 0;
        jf = room >= 0 ? jf % (room + 1) : 0;
      }
    }
    if (insn.code === 0x60 || insn.code === 0x61 || insn.code === 0x02 || insn.code === 0x03) k %= 4;
    if ((insn.code === 0x64 || insn.code === 0x74) && k >= 32) k %= 40;
    if ((insn.code & 0x07) <= 1 && (insn.code & 0xe0) !== 0 && (insn.code & 0xe0) !== 0x60 && k > 200 && k % 3 !== 0)
      k %= 90;
    return { code: insn.code, jt, jf, k };
  });
}

/** Programs that mostly pass the verifier (fix = true) or raw ones that mostly do not. */
export function programArb(
  options: { fix?: boolean; anyOpcode?: boolean; maxLength?: number } = {},
): fc.Arbitrary<Program> {
  const fix = options.fix ?? true;
  return fc
    .tuple(
      fc.array(insnArb(options.anyOpcode ?? false), { minLength: 0, maxLength: options.maxLength ?? 24 }),
      fc.oneof(
        fc.record({ code: fc.constant(0x06), jt: fc.constant(0), jf: fc.constant(0), k: kArb }),
        fc.constant({ code: 0x16, jt: 0, jf: 0, k: 0 }),
      ),
    )
    .map(([raw, ret]) => shape(raw, ret, fix));
}
