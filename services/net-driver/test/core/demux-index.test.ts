import { compileExpression, interpret } from '@exonet/bpf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexedDemux, mayOverlap } from '../../src/core/demux-index.ts';
import type { InstalledGrant } from '../../src/core/grant-table.ts';
import { ethernet, icmpEcho, tcp, udp } from '../support/frames.ts';

function grant(expr: string, task: number): InstalledGrant {
  const program = compileExpression(expr);
  return {
    jti: `${task}:${expr}`,
    task,
    kid: 'k',
    program,
    filter: (p, w, b) => interpret(program, p, w, b),
    claims: { dir: 'rx', layer: 'task' } as InstalledGrant['claims'],
  };
}

const EXPRESSIONS = [
  'udp dst port 53',
  'udp dst port 7',
  'tcp dst port 80',
  'tcp[tcpflags] & tcp-syn != 0',
  'arp',
  'ether broadcast',
  'icmp',
  'vlan and ip6',
  'not arp',
  'ip host 10.77.0.2',
  'udp portrange 1000-1010',
  'ip6 and udp dst port 53',
  'ether proto 0x88b5',
  'less 100',
  'udp[8:2] = 0x1234',
  '',
];

const e = { src: '10.77.0.1', dst: '10.77.0.2' };
const SAMPLES = [
  udp({ ...e, sport: 1, dport: 53 }),
  udp({ ...e, sport: 1, dport: 7 }),
  udp({ ...e, sport: 1, dport: 1005 }),
  tcp({ ...e, sport: 1, dport: 80, flags: 2 }),
  tcp({ ...e, sport: 1, dport: 81, flags: 0x10 }),
  icmpEcho(e, 'echo-request', 1),
  ethernet({ ...e, dstMac: 'ff:ff:ff:ff:ff:ff' }, 0x0806, new Uint8Array(28)),
  ethernet(e, 0x88b5, new Uint8Array(46)),
  udp({ ...e, vlan: 5, sport: 1, dport: 53 }),
];

describe('the merged receive index', () => {
  it('never misses a grant whose filter accepts the frame (random frames and mutations)', () => {
    const demux = new IndexedDemux();
    const grants = EXPRESSIONS.map((x, i) => grant(x, i));
    for (const g of grants) demux.add(g);
    const frameArb = fc.oneof(
      fc.constantFrom(...SAMPLES),
      fc
        .tuple(
          fc.constantFrom(...SAMPLES),
          fc.array(fc.tuple(fc.nat(80), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
          fc.nat(120),
        )
        .map(([f, edits, cut]) => {
          const m = f.slice();
          for (const [at, v] of edits) if (at < m.length) m[at] = v;
          return m.subarray(0, Math.max(1, Math.min(m.length, cut || m.length)));
        }),
      fc.uint8Array({ minLength: 1, maxLength: 120 }),
    );
    fc.assert(
      fc.property(frameArb, (frame) => {
        const seen = new Set<InstalledGrant>();
        demux.candidates(frame, frame.length, (g) => seen.add(g));
        for (const g of grants) {
          if (g.filter(frame, frame.length, frame.length) !== 0) expect(seen.has(g)).toBe(true);
        }
      }),
      { seed: 77, numRuns: 3000 },
    );
  });

  it('finds one candidate among ten thousand port filters, and forgets removed ones', () => {
    const demux = new IndexedDemux();
    const grants: InstalledGrant[] = [];
    for (let p = 0; p < 10_000; p++) grants.push(grant(`udp dst port ${10_000 + p}`, p));
    for (const g of grants) demux.add(g);
    expect(demux.shapeCount).toBeLessThanOrEqual(4);
    let visited: InstalledGrant[] = [];
    const frame = udp({ ...e, sport: 1, dport: 12_345 });
    demux.candidates(frame, frame.length, (g) => visited.push(g));
    expect(visited.map((g) => g.task)).toEqual([2345]);
    demux.remove(grants[2345]);
    visited = [];
    demux.candidates(frame, frame.length, (g) => visited.push(g));
    expect(visited).toEqual([]);
    expect(demux.size).toBe(9_999);
  });

  it('finds exactly the grants of a port through any sequence of adds and removes (table growth, shrinking, shifts)', () => {
    // Port filters only: the index then names exactly the grants whose port matches, so the oracle is a plain
    // map from port to grants. Few ports, many grants per port, and long add/remove runs make the table grow,
    // shrink, hold multi-grant buckets and shift entries back over freed slots.
    const ops = fc.array(fc.record({ add: fc.boolean(), port: fc.integer({ min: 1, max: 48 }), pick: fc.nat() }), {
      minLength: 1,
      maxLength: 300,
    });
    const frames = new Map<number, Uint8Array>();
    const frameTo = (port: number) => {
      let f = frames.get(port);
      if (f === undefined) {
        f = udp({ ...e, sport: 1, dport: port });
        frames.set(port, f);
      }
      return f;
    };
    const compiled = new Map<number, ReturnType<typeof compileExpression>>();
    fc.assert(
      fc.property(ops, (list) => {
        const demux = new IndexedDemux();
        const live = new Map<number, InstalledGrant[]>();
        let task = 0;
        for (const op of list) {
          const held = live.get(op.port) ?? [];
          if (op.add || held.length === 0) {
            let program = compiled.get(op.port);
            if (program === undefined) {
              program = compileExpression(`udp dst port ${op.port}`);
              compiled.set(op.port, program);
            }
            const g: InstalledGrant = { ...grant('udp', task), jti: `t${task}`, task: task++, program };
            demux.add(g);
            live.set(op.port, [...held, g]);
          } else {
            const g = held[op.pick % held.length];
            demux.remove(g);
            live.set(
              op.port,
              held.filter((x) => x !== g),
            );
          }
          // After every step, every port (and one nobody asks for).
          for (let port = 1; port <= 49; port++) {
            const seen: number[] = [];
            const f = frameTo(port);
            demux.candidates(f, f.length, (g) => seen.push(g.task));
            expect(seen.sort((a, b) => a - b)).toEqual((live.get(port) ?? []).map((g) => g.task).sort((a, b) => a - b));
          }
        }
        expect(demux.size).toBe([...live.values()].reduce((n, l) => n + l.length, 0));
      }),
      { numRuns: 100 },
    );
  });

  it('tells disjoint filters apart for exclusivity, and is conservative otherwise', () => {
    const p = (x: string) => compileExpression(x);
    expect(mayOverlap(p('udp dst port 53'), p('udp dst port 54'))).toBe(false);
    expect(mayOverlap(p('udp dst port 53'), p('udp port 53'))).toBe(true);
    expect(mayOverlap(p('udp dst port 53'), p('tcp dst port 53'))).toBe(false);
    expect(mayOverlap(p('arp'), p('ip'))).toBe(false);
    expect(mayOverlap(p('udp dst port 53'), p(''))).toBe(true);
    expect(mayOverlap(p('udp dst port 53 and src host 10.0.0.1'), p('udp dst port 53 and src host 10.0.0.2'))).toBe(
      false,
    );
  });
});
