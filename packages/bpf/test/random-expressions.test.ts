import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcapCompile, pcapFilter } from '../src/bench/libpcap-harness.ts';
import { packetSet } from '../src/bench/packets.ts';
import { BpfError, compileExpression, interpret, type Program } from '../src/index.ts';

// Random expressions from the supported grammar, with values the generated packets carry, so that many
// primitives match. libpcap (unoptimised: its optimiser reorders loads, see docs/bpf.md) is the oracle.
const host4 = fc.constantFrom('10.0.0.1', '10.0.0.2', '192.168.1.1', '192.168.1.77', '8.8.8.8', '224.0.0.1');
const host6 = fc.constantFrom('fe80::1', '2001:db8::2', 'ff02::1');
const mac = fc.constantFrom('00:11:22:33:44:55', '02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff');
const portNum = fc.constantFrom(20, 22, 53, 80, 443, 1024, 8080);
const dir = fc.constantFrom('', 'src ', 'dst ', 'src or dst ', 'src and dst ');
const tproto = fc.constantFrom('', 'tcp ', 'udp ', 'sctp ');
const proto = fc.constantFrom('ip', 'ip6', 'arp', 'rarp', 'tcp', 'udp', 'icmp', 'icmp6', 'sctp', 'igmp', 'vlan');
const layer = fc.constantFrom('ether', 'ip', 'ip6', 'tcp', 'udp', 'icmp', 'icmp6', 'arp');
const size = fc.constantFrom('', ':1', ':2', ':4');
const relop = fc.constantFrom('=', '!=', '<', '<=', '>', '>=');
const aop = fc.constantFrom('+', '-', '*', '/', '%', '&', '|', '^', '<<', '>>');

const arith: fc.Arbitrary<string> = fc.letrec((tie) => ({
  a: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: 0, max: 70 }).map(String),
    fc.constantFrom('len', 'tcpflags', 'tcp-syn', 'icmptype', '0x800', '0xff'),
    fc.tuple(layer, fc.integer({ min: 0, max: 60 }), size).map(([l, o, s]) => `${l}[${o}${s}]`),
    fc.tuple(layer, tie('a'), size).map(([l, i, s]) => `${l}[${i}${s}]`),
    fc.tuple(tie('a'), aop, tie('a')).map(([x, o, y]) => `${x} ${o} ${y}`),
    tie('a').map((x) => `(${x})`),
    tie('a').map((x) => `-${x}`),
  ),
})).a;

const primitive = fc.oneof(
  fc.tuple(dir, host4).map(([d, h]) => `${d}host ${h}`),
  fc.tuple(fc.constantFrom('ip ', 'arp ', 'rarp '), dir, host4).map(([p, d, h]) => `${p}${d}host ${h}`),
  fc.tuple(dir, host6).map(([d, h]) => `${d}host ${h}`),
  fc
    .tuple(dir, fc.constantFrom('10.0.0.0/8', '192.168', '192.168.1.0/24', '0.0.0.0/0', '10.0.0.0 mask 255.255.0.0'))
    .map(([d, n]) => `${d}net ${n}`),
  fc.tuple(dir, fc.constantFrom('2001:db8::/32', 'fe80::/10', 'ff00::/8')).map(([d, n]) => `${d}net ${n}`),
  fc.tuple(dir, mac).map(([d, m]) => `ether ${d}host ${m}`),
  fc.tuple(tproto, dir, portNum).map(([p, d, n]) => `${p}${d}port ${n}`),
  fc.tuple(tproto, dir, portNum, portNum).map(([p, d, a, b]) => `${p}${d}portrange ${a}-${b}`),
  proto,
  fc.constantFrom('broadcast', 'multicast', 'ip multicast', 'ip6 multicast', 'ether broadcast'),
  fc.integer({ min: 0, max: 300 }).map((n) => `ip proto ${n % 256}`),
  fc.constantFrom(
    'ether proto 0x800',
    'ether proto 0x86dd',
    'ether proto 0x806',
    'ether proto 0x88cc',
    'ether proto 100',
  ),
  fc.constantFrom(1, 10, 100, 4095).map((v) => `vlan ${v}`),
  fc.integer({ min: 0, max: 1600 }).map((n) => `less ${n}`),
  fc.integer({ min: 0, max: 1600 }).map((n) => `greater ${n}`),
  fc.tuple(arith, relop, arith).map(([a, o, b]) => `${a} ${o} ${b}`),
);

const expr: fc.Arbitrary<string> = fc.letrec((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    primitive,
    primitive,
    tie('e').map((x) => `not ${x}`),
    tie('e').map((x) => `(${x})`),
    fc.tuple(tie('e'), fc.constantFrom('and', 'or', '&&', '||'), tie('e')).map(([a, o, b]) => `${a} ${o} ${b}`),
    // A bare value repeating the qualifiers before it.
    fc
      .tuple(
        fc.constantFrom('host 10.0.0.1', 'tcp port 80', 'src net 10.0.0.0/8', 'udp dst port 53'),
        fc.constantFrom('and', 'or'),
        fc.constantFrom('10.0.0.2', '443', '53', 'not 22', '(80 or 8080)'),
      )
      .map(([a, o, b]) => `${a} ${o} ${b}`),
  ),
})).e;

describe('random expressions against libpcap', () => {
  it("compile when libpcap compiles them, and give libpcap's verdict on every packet", () => {
    const exprs = fc.sample(expr, { seed: 424242, numRuns: 1200 });
    const packets = packetSet(160, 99);
    const theirs = pcapCompile(exprs, { optimize: false });
    const theirsOpt = pcapCompile(exprs, { optimize: true });
    const ours: (Program | undefined)[] = exprs.map((e, i) => {
      try {
        return compileExpression(e);
      } catch (err) {
        expect(err, e).toBeInstanceOf(BpfError);
        // We may only refuse what libpcap refuses, with or without its optimiser (whose constant folding
        // adds errors such as a modulus by a constant that folds to 0).
        if ('program' in theirs[i]! && 'program' in theirsOpt[i]!)
          throw new Error(`libpcap compiles "${e}" but we refuse it: ${(err as Error).message}`);
        return undefined;
      }
    });
    const both = exprs.map((_, i) => i).filter((i) => ours[i] && 'program' in theirs[i]!);
    expect(both.length).toBeGreaterThan(700);
    const refs = both.map((i) => (theirs[i] as { program: Program }).program);
    const values = pcapFilter(refs, packets);
    both.forEach((i, n) => {
      packets.forEach((pk, j) => {
        const v = interpret(ours[i]!, pk.data, pk.wirelen, pk.data.length);
        if (v !== values[n]![j]) {
          throw new Error(
            `"${exprs[i]}" packet ${Buffer.from(pk.data).toString('hex')}: ours ${v}, libpcap ${values[n]![j]}`,
          );
        }
      });
    });
    // Where we compile something libpcap refuses, it must be a documented choice: none expected here.
    const onlyOurs = exprs.filter((_, i) => ours[i] && !('program' in theirs[i]!));
    expect(onlyOurs).toEqual([]);
  });
});
