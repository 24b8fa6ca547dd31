/**
 * Expressions for the other link layers libpcap compiles for (Linux cooked v1 and v2, raw IP, raw IPv4 and
 * IPv6): every corpus expression against libpcap's own compilation for that DLT, on the corpus packets
 * re-framed for the link layer (and on random bytes), with libpcap's errors where it refuses.
 */
import { describe, expect, it } from 'vitest';
import { pcapCompile, pcapFilter } from '../src/bench/libpcap-harness.ts';
import { type Frame, packetSet } from '../src/bench/packets.ts';
import { BpfError, compileExpression, interpret, type LinkLayer, linkLayerOf, type Program } from '../src/index.ts';
import { CORPUS } from './_corpus.ts';
import { reframe, sll2Header, sllHeader } from './_link-frames.ts';

/** Each link layer with the DLT libpcap compiles for and how an Ethernet frame's contents are re-framed. */
const LAYERS: { link: LinkLayer; dlt: number; frame: (eth: Frame, variant: number) => Frame }[] = [
  { link: 'linux-sll', dlt: 113, frame: (f, v) => reframe(f, sllHeader(f.data, v)) },
  { link: 'linux-sll2', dlt: 276, frame: (f, v) => reframe(f, sll2Header(f.data, v)) },
  { link: 'raw', dlt: 12, frame: (f) => reframe(f, new Uint8Array(0)) },
  { link: 'ipv4', dlt: 228, frame: (f) => reframe(f, new Uint8Array(0)) },
  { link: 'ipv6', dlt: 229, frame: (f) => reframe(f, new Uint8Array(0)) },
];

const ethernet = packetSet(500, 7);

describe.each(LAYERS)('expressions for $link (DLT $dlt) against libpcap', ({ link, dlt, frame }) => {
  const packets = ethernet.map((f, i) => frame(f, i % 3));
  // With the packet direction, which only Linux cooked captures record (elsewhere refused, as tcpdump -r does).
  const all = [...CORPUS, 'inbound', 'outbound', 'udp and not outbound', 'inbound or arp'];
  const theirs = pcapCompile(all, { optimize: false, dlt });

  it('compiles what libpcap compiles, refuses what it refuses, and agrees on every packet', () => {
    const programs: Program[] = [];
    const exprs: string[] = [];
    let refusedAlike = 0;
    all.forEach((e, i) => {
      const t = theirs[i]!;
      let ours: Program | BpfError;
      try {
        ours = compileExpression(e, { link });
      } catch (err) {
        if (!(err instanceof BpfError)) throw err;
        ours = err;
      }
      if ('error' in t) {
        // libpcap refuses (an Ethernet-only qualifier): so must we.
        expect(ours, `${e}: libpcap says ${t.error}`).toBeInstanceOf(BpfError);
        refusedAlike++;
        return;
      }
      // We may refuse what we do not support (LLC special cases), never what libpcap cannot compile.
      if (ours instanceof BpfError) {
        expect(ours.message, e).toMatch(/not supported/);
        return;
      }
      programs.push(t.program);
      exprs.push(e);
      const values = pcapFilter([t.program], packets)[0]!;
      packets.forEach((pk, j) => {
        const v = interpret(ours as Program, pk.data, pk.wirelen, pk.data.length);
        if (v !== values[j]) {
          throw new Error(
            `${link} "${e}" packet ${j} (${Buffer.from(pk.data).toString('hex')}): ours ${v}, libpcap ${values[j]}`,
          );
        }
      });
    });
    // Most of the corpus compiles for every link layer; only the Ethernet-only qualifiers are refused.
    expect(exprs.length).toBeGreaterThan(CORPUS.length / 2);
    if (link !== 'ethernet') expect(refusedAlike).toBeGreaterThan(0);
  });
});

describe('link layers', () => {
  it('maps capture LINKTYPE values, and refuses the others', () => {
    expect(linkLayerOf(1)).toBe('ethernet');
    expect(linkLayerOf(113)).toBe('linux-sll');
    expect(linkLayerOf(276)).toBe('linux-sll2');
    expect(linkLayerOf(101)).toBe('raw');
    expect(linkLayerOf(105)).toBeUndefined();
    expect(() => compileExpression('ip', { link: 'token-ring' as LinkLayer })).toThrow(/link must be one of/);
  });

  it("refuses Ethernet-only qualifiers with libpcap's reasons", () => {
    expect(() => compileExpression('vlan 5', { link: 'linux-sll' })).toThrow(/no VLAN support for Linux cooked v1/);
    expect(() => compileExpression('ether host 1:2:3:4:5:6', { link: 'raw' })).toThrow(/ethernet addresses/);
    expect(() => compileExpression('ether broadcast', { link: 'linux-sll2' })).toThrow(/not a broadcast link/);
    expect(() => compileExpression('multicast', { link: 'ipv4' })).toThrow(/link-layer multicast/);
  });
});
