import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type Frame, packetSet } from '../src/bench/packets.ts';
import {
  BpfError,
  BpfErrorCode,
  compileExpression,
  compileProgram,
  readCaptureFile,
  writeCaptureFile,
} from '../src/index.ts';

/** How a packet goes into the file: an enhanced, a simple or an obsolete packet block. */
type Kind = 'epb' | 'spb' | 'pb';

/** A pcapng writer for the tests: sections of either byte order, blocks the reader must skip, options. */
class PcapngWriter {
  private readonly parts: Uint8Array[] = [];
  private little = true;

  private block(type: number, body: Uint8Array): void {
    const padded = (body.length + 3) & ~3;
    const length = 12 + padded;
    const out = new Uint8Array(length);
    const v = new DataView(out.buffer);
    v.setUint32(0, type, this.little);
    v.setUint32(4, length, this.little);
    out.set(body, 8);
    v.setUint32(length - 4, length, this.little);
    this.parts.push(out);
  }

  private body(size: number, fill: (v: DataView, b: Uint8Array) => void): Uint8Array {
    const b = new Uint8Array(size);
    fill(new DataView(b.buffer), b);
    return b;
  }

  /** An option list with one comment (code 1) and the end marker. */
  private options(text: string): Uint8Array {
    const t = new TextEncoder().encode(text);
    const padded = (t.length + 3) & ~3;
    return this.body(4 + padded + 4, (v, b) => {
      v.setUint16(0, 1, this.little);
      v.setUint16(2, t.length, this.little);
      b.set(t, 4);
    });
  }

  section(little: boolean): this {
    this.little = little;
    const opts = this.options('exonet test section');
    this.block(
      0x0a0d0d0a,
      this.body(16 + opts.length, (v, b) => {
        v.setUint32(0, 0x1a2b3c4d, little);
        v.setUint16(4, 1, little);
        v.setUint16(6, 0, little);
        v.setInt32(8, -1, little); // section length unknown
        v.setInt32(12, -1, little);
        b.set(opts, 16);
      }),
    );
    return this;
  }

  /** An interface; `tsresol` is the raw if_tsresol option byte, if any. */
  iface(linktype: number, snaplen: number, tsresol?: number): this {
    this.block(
      1,
      this.body(tsresol === undefined ? 8 : 20, (v) => {
        v.setUint16(0, linktype, this.little);
        v.setUint32(4, snaplen, this.little);
        if (tsresol !== undefined) {
          v.setUint16(8, 9, this.little);
          v.setUint16(10, 1, this.little);
          v.setUint8(12, tsresol);
        }
      }),
    );
    return this;
  }

  /** A block the reader must skip (a name resolution block, type 4). */
  other(): this {
    this.block(
      4,
      this.body(4, () => {}),
    );
    return this;
  }

  packet(f: Frame, kind: Kind, iface = 0, ticks = 0x5f5e1_00002000n): this {
    const n = f.data.length;
    if (kind === 'spb') {
      this.block(
        3,
        this.body(4 + n, (v, b) => {
          v.setUint32(0, f.wirelen, this.little);
          b.set(f.data, 4);
        }),
      );
      return this;
    }
    const opts = kind === 'epb' ? this.options('c') : new Uint8Array(0);
    this.block(
      kind === 'epb' ? 6 : 2,
      this.body(20 + ((n + 3) & ~3) + opts.length, (v, b) => {
        if (kind === 'epb') v.setUint32(0, iface, this.little);
        else v.setUint16(0, iface, this.little);
        v.setUint32(4, Number(ticks >> 32n), this.little);
        v.setUint32(8, Number(ticks & 0xffffffffn), this.little);
        v.setUint32(12, n, this.little);
        v.setUint32(16, f.wirelen, this.little);
        b.set(f.data, 20);
        b.set(opts, 20 + ((n + 3) & ~3));
      }),
    );
    return this;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'exonet-pcapng-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Packets whose captured length equals their original length (a simple packet block carries no captured
 *  length: it is implied, so a truncated capture would not round-trip). */
const whole = packetSet(300, 7).filter((f) => f.data.length === f.wirelen && f.data.length > 0);
const frames = packetSet(300, 8);

/** Two sections (libpcap wants them in one byte order, as most writers make them; ours reads either). */
function mixedFile(little = true, secondLittle = little): Uint8Array {
  const w = new PcapngWriter().section(little).iface(1, 262144).other();
  frames.forEach((f, i) => {
    w.packet(f, i % 3 === 0 ? 'pb' : 'epb');
  });
  // A second section with two Ethernet interfaces (ids restart at every section).
  w.section(secondLittle).iface(1, 0).iface(1, 262144);
  whole.forEach((f, i) => {
    if (i % 2) w.packet(f, 'spb');
    else w.packet(f, 'epb', 1);
  });
  return w.bytes();
}

describe('pcapng capture files', () => {
  it('reads every packet of either byte order and every packet block kind, skipping other blocks', () => {
    for (const [a, b] of [
      [true, true],
      [false, false],
      [true, false],
    ]) {
      const cap = readCaptureFile(mixedFile(a, b));
      expect(cap.linktype).toBe(1);
      const expected = [...frames, ...whole];
      expect(cap.packets.length).toBe(expected.length);
      cap.packets.forEach((p, i) => {
        expect(p.wirelen).toBe(expected[i]!.wirelen);
        expect(Buffer.from(p.data).equals(Buffer.from(expected[i]!.data)), `packet ${i}`).toBe(true);
      });
    }
  });

  it('selects the packets tcpdump selects from the same pcapng file', async () => {
    for (const [little, expr] of [
      [true, 'udp port 53'],
      [false, 'tcp'],
      [true, 'ip6 or arp'],
      [false, 'vlan'],
      [true, 'len > 100'],
    ] as const) {
      const input = join(dir, 'mixed.pcapng');
      writeFileSync(input, mixedFile(little));
      const all = readCaptureFile(readFileSync(input)).packets;
      const out = join(dir, 'out.pcap');
      await promisify(execFile)('tcpdump', ['-r', input, '-w', out, expr], { encoding: 'utf8' });
      const theirs = readCaptureFile(readFileSync(out)).packets.map((p) => Buffer.from(p.data).toString('hex'));
      const run = compileProgram(compileExpression(expr));
      const ours = all.filter((p) => run(p.data, p.wirelen, p.data.length) !== 0);
      expect(
        ours.map((p) => Buffer.from(p.data).toString('hex')),
        expr,
      ).toEqual(theirs);
      expect(theirs.length, expr).toBeGreaterThan(0);
    }
  });

  it("turns timestamps into microseconds by each interface's resolution", () => {
    const ns = 1_700_000_000_123_456_789n;
    const file = new PcapngWriter()
      .section(false)
      .iface(1, 0)
      .iface(1, 0, 9)
      .iface(1, 0, 0x80 | 20)
      .packet(frames[0]!, 'epb', 0, 1_700_000_000_000_001n)
      .packet(frames[0]!, 'epb', 1, ns)
      .packet(frames[0]!, 'epb', 2, 3n << 20n)
      .packet(frames[0]!, 'spb')
      .bytes();
    expect(readCaptureFile(file).packets.map((p) => p.timestampMicros)).toEqual([
      1_700_000_000_000_001, 1_700_000_000_123_456, 3_000_000, 0,
    ]);
  });

  it('refuses, naming the problem, what libpcap refuses', () => {
    const mixedLinks = new PcapngWriter().section(true).iface(1, 0).iface(101, 0).bytes();
    expect(() => readCaptureFile(mixedLinks)).toThrow(/link type 101, different/);
    const noIface = new PcapngWriter().section(true).packet(frames[0]!, 'epb').bytes();
    expect(() => readCaptureFile(noIface)).toThrow(/interface 0, not described/);
    const file = mixedFile();
    expect(() => readCaptureFile(file.subarray(0, file.length - 6))).toThrow(/truncated/);
    const badTrailer = Uint8Array.from(file);
    badTrailer[new PcapngWriter().section(true).bytes().length - 1] ^= 1;
    expect(() => readCaptureFile(badTrailer)).toThrow(/trailing block length/);
    const badBom = Uint8Array.from(file);
    badBom[8] = 0;
    expect(() => readCaptureFile(badBom)).toThrow(/byte-order magic/);
    const huge = Uint8Array.from(file);
    new DataView(huge.buffer).setUint32(4, 0x7ffffff0, true);
    expect(() => readCaptureFile(huge)).toThrow(/claims|truncated/);
  });
});

describe('hostile capture files', () => {
  const pcap = writeCaptureFile(frames.slice(0, 40));
  const pcapng = mixedFile(true, false);
  /** Reading either returns packets that lie inside the file, or refuses with the package's own error. */
  const readsOrRefuses = (bytes: Uint8Array) => {
    try {
      const file = readCaptureFile(bytes);
      for (const p of file.packets) expect(p.data.length).toBeLessThanOrEqual(bytes.length);
    } catch (err) {
      expect(err, String(err)).toBeInstanceOf(BpfError);
      expect((err as BpfError).code).toBe(BpfErrorCode.ARGUMENT);
    }
  };

  it('never crashes on a valid pcap or pcapng file with bytes flipped, cut or inserted', () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), value: fc.constant(0) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(edit, { minLength: 1, maxLength: 8 }), (ng, edits) => {
        let bytes = Array.from(ng ? pcapng : pcap);
        for (const e of edits) {
          const at = e.at % (bytes.length + 1);
          if (e.kind === 'set' && at < bytes.length) bytes[at] = e.value;
          else if (e.kind === 'cut') bytes = bytes.slice(0, at);
          else bytes.splice(at, 0, e.value);
        }
        readsOrRefuses(Uint8Array.from(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('never crashes on random bytes behind a pcap or pcapng magic', () => {
    const magics = [
      [0xd4, 0xc3, 0xb2, 0xa1],
      [0xa1, 0xb2, 0xc3, 0xd4],
      [0x4d, 0x3c, 0xb2, 0xa1],
      [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 400 }), (magic, rest) => {
        readsOrRefuses(Uint8Array.from([...magic, ...rest]));
      }),
      { numRuns: 2000 },
    );
  });
});
