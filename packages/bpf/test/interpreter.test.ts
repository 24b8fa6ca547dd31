import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcapFilter } from '../src/bench/libpcap-harness.ts';
import { packetSet } from '../src/bench/packets.ts';
import { BpfError, type Insn, interpret, type Program, verifyProgram } from '../src/index.ts';
import { programArb } from './_programs.ts';

const s = (code: number, k = 0): Insn => ({ code, jt: 0, jf: 0, k });
const RETA = s(0x16);
const run = (p: Program, bytes: number[] = [], wirelen = bytes.length, buflen = bytes.length) =>
  interpret(p, Uint8Array.from(bytes), wirelen, buflen);

describe('interpreter semantics (libpcap bpf_filter)', () => {
  it('loads big-endian words, halves and bytes', () => {
    const pkt = [1, 2, 3, 4, 5];
    expect(run([s(0x20, 1), RETA], pkt)).toBe(0x02030405);
    expect(run([s(0x28, 3), RETA], pkt)).toBe(0x0405);
    expect(run([s(0x30, 4), RETA], pkt)).toBe(5);
    expect(run([s(0x20, 0), RETA], [0xff, 0xff, 0xff, 0xfe])).toBe(0xfffffffe);
  });

  it('ends with 0 on an out-of-bounds load, bounded by buflen not the array', () => {
    const pkt = [1, 2, 3, 4, 5];
    expect(run([s(0x20, 2), s(0x06, 9)], pkt)).toBe(0);
    expect(run([s(0x28, 4), s(0x06, 9)], pkt)).toBe(0);
    expect(run([s(0x30, 5), s(0x06, 9)], pkt)).toBe(0);
    expect(run([s(0x30, 3), s(0x06, 9)], pkt, 5, 3)).toBe(0);
    expect(run([s(0x30, 0xffffffff), s(0x06, 9)], pkt)).toBe(0);
    expect(run([s(0xb1, 5), s(0x06, 9)], pkt)).toBe(0);
    // buflen larger than the bytes given is clamped, never read past the array.
    expect(run([s(0x30, 7), s(0x06, 9)], pkt, 100, 100)).toBe(0);
  });

  it('indexed loads add X without overflow', () => {
    const pkt = [9, 8, 7, 6];
    expect(run([s(0x01, 2), s(0x50, 1), RETA], pkt)).toBe(6);
    expect(run([s(0x01, 0xffffffff), s(0x50, 1), s(0x06, 9)], pkt)).toBe(0);
    expect(run([s(0x01, 1), s(0x48, 0xffffffff), s(0x06, 9)], pkt)).toBe(0);
    expect(run([s(0x01, 1), s(0x40, 0), RETA], pkt)).toBe(0);
  });

  it('LEN loads wirelen, not buflen', () => {
    expect(run([s(0x80), RETA], [1, 2], 1500, 2)).toBe(1500);
    expect(run([s(0x81), s(0x87), RETA], [1, 2], 60, 2)).toBe(60);
  });

  it('MSH computes 4 * (low nibble)', () => {
    expect(run([s(0xb1, 0), s(0x87), RETA], [0x4f])).toBe(60);
  });

  it('division and modulus by X = 0 return 0; by a constant works unsigned', () => {
    expect(run([s(0x00, 7), s(0x3c), s(0x06, 9)])).toBe(0);
    expect(run([s(0x00, 7), s(0x9c), s(0x06, 9)])).toBe(0);
    expect(run([s(0x00, 0xffffffff), s(0x34, 2), RETA])).toBe(0x7fffffff);
    expect(run([s(0x00, 0xffffffff), s(0x94, 10), RETA])).toBe(5);
  });

  it('shifts by X >= 32 give 0 (not masked by 31)', () => {
    expect(run([s(0x00, 1), s(0x01, 32), s(0x6c), RETA])).toBe(0);
    expect(run([s(0x00, 0x80000000), s(0x01, 33), s(0x7c), RETA])).toBe(0);
    expect(run([s(0x00, 1), s(0x01, 31), s(0x6c), RETA])).toBe(0x80000000);
    expect(run([s(0x00, 0x80000000), s(0x74, 31), RETA])).toBe(1);
  });

  it('arithmetic is unsigned 32-bit', () => {
    expect(run([s(0x00, 0), s(0x14, 1), RETA])).toBe(0xffffffff);
    expect(run([s(0x00, 0xffffffff), s(0x04, 2), RETA])).toBe(1);
    expect(run([s(0x00, 0x10000), s(0x24, 0x10000), RETA])).toBe(0);
    expect(run([s(0x00, 0xffffffff), s(0x24, 0xffffffff), RETA])).toBe(1);
    expect(run([s(0x00, 1), s(0x84), RETA])).toBe(0xffffffff);
  });

  it('compares unsigned', () => {
    const p: Program = [s(0x00, 0x80000000), { code: 0x25, jt: 0, jf: 1, k: 1 }, s(0x06, 1), s(0x06, 2)];
    expect(run(p)).toBe(1);
    const q: Program = [
      s(0x00, 0x80000000),
      s(0x01, 0x7fffffff),
      { code: 0x2d, jt: 0, jf: 1, k: 0 },
      s(0x06, 1),
      s(0x06, 2),
    ];
    expect(run(q)).toBe(1);
  });

  it('scratch memory and registers start at 0 and hold values', () => {
    expect(run([s(0x00, 5), s(0x02, 15), s(0x00, 0), s(0x60, 15), RETA])).toBe(5);
    expect(run([s(0x87), RETA])).toBe(0);
  });

  it('reads an unstored scratch word as 0 even after another call stored it (unverified programs)', () => {
    expect(run([s(0x00, 5), s(0x02, 3), s(0x16)])).toBe(5);
    expect(run([s(0x60, 3), s(0x16)])).toBe(0);
    expect(run([s(0x01, 7), s(0x03, 3), s(0x61, 3), s(0x87), s(0x16)])).toBe(7);
  });

  it('throws a typed error, never loops or crashes, on programs libpcap would abort on', () => {
    expect(() => run([s(0x0e)])).toThrow(BpfError);
    expect(() => run([s(0x00, 1)])).toThrow(/fell off/);
    expect(() => run([s(0x05, 0xffffffff), s(0x06, 0)])).toThrow(BpfError);
    expect(() => run([s(0x60, 99), s(0x06, 0)])).toThrow(BpfError);
  });

  it('handles empty and 64 KiB packets', () => {
    expect(run([s(0x30, 0), s(0x06, 1)], [])).toBe(0);
    const big = new Uint8Array(65536);
    big[65535] = 7;
    expect(interpret([s(0x30, 65535), RETA], big, 65536, 65536)).toBe(7);
    expect(interpret([s(0x28, 65535), RETA], big, 65536, 65536)).toBe(0);
  });
});

describe('interpreter against libpcap bpf_filter', () => {
  it('returns exactly libpcap value for random verified programs on generated packets', () => {
    const packets = packetSet(60, 3);
    const programs = fc
      .sample(programArb({ maxLength: 30 }), { seed: 99, numRuns: 4000 })
      .filter((p) => verifyProgram(p).ok);
    expect(programs.length).toBeGreaterThan(1000);
    const theirs = pcapFilter(programs, packets);
    let nonzero = 0;
    programs.forEach((p, i) => {
      packets.forEach((pk, j) => {
        const ours = interpret(p, pk.data, pk.wirelen, pk.data.length);
        if (ours !== theirs[i]![j]) {
          throw new Error(`program ${JSON.stringify(p)} packet ${j}: ours ${ours}, libpcap ${theirs[i]![j]}`);
        }
        if (ours !== 0) nonzero++;
      });
    });
    expect(nonzero).toBeGreaterThan(1000);
  });
});
