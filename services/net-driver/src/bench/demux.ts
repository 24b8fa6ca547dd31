import { compileExpression, compileProgram, interpret, type Program } from '@exonet/bpf';
import { type Demux, LinearDemux } from '../core/demux.ts';
import { IndexedDemux } from '../core/demux-index.ts';
import { compileFilter } from '../core/filter-engine.ts';
import type { FrameFilter, InstalledGrant } from '../core/grant-table.ts';

/** Options of a benchmark run (as packages/cli's BenchmarkOptions). */
interface Options {
  readonly quick: boolean;
  readonly log: (line: string) => void;
}

const TEMPLATE_PORT = 54_321;
const BASE_PORT = 10_000;

/** `udp dst port P` for many P without compiling each: the template's port constant replaced. */
function portProgram(template: Program, port: number): Program {
  return template.map((i) => (i.k === TEMPLATE_PORT ? { ...i, k: port } : i));
}

/** The engines compared in the same run: the driver's own (compileFilter) and the alternatives it rejected. */
const ENGINES = {
  driver: compileFilter,
  interpreter: (p: Program) => (pkt: Uint8Array, w: number, b: number) => interpret(p, pkt, w, b),
  'per-filter': compileProgram,
} as const;
type Engine = keyof typeof ENGINES;

function grant(program: Program, task: number, engine: Engine = 'driver'): InstalledGrant {
  return {
    jti: `bench-${task}-${Math.random()}`,
    task,
    kid: 'bench',
    program,
    filter: ENGINES[engine](program),
    claims: { dir: 'rx', layer: 'task' } as InstalledGrant['claims'],
  };
}

/** Ethernet + IPv4 + UDP, 64 bytes on the wire without FCS: 60. */
function udpFrame(dport: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set([0x00, 0xe0, 0x4c, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00], 0);
  f.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2], 14);
  f.set([0x30, 0x39, dport >> 8, dport & 0xff, 0, 26, 0, 0], 34);
  return f;
}

function arpFrame(): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set([2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 6);
  return f;
}

/**
 * Per-packet demultiplexing cost: the merged index against evaluating every task's filter in turn (what
 * Linux AF_PACKET does), both including the full filter run of every candidate, over the same packets.
 * Reports the best batch of 256 packets: the mean over wall-clock time measured mostly the scheduler (the
 * machine is shared; runs of the same code differed 3-7x), interference only ever adds time.
 */
function measure(demux: Demux, frames: readonly Uint8Array[], minPackets: number, budgetMs: number): number {
  let accepted = 0;
  let current: Uint8Array = frames[0];
  // As the core's visitor: the filter the index hands over, not the grant's.
  const visit = (_g: InstalledGrant, _task: number, filter: FrameFilter): void => {
    if (filter(current, current.length, current.length) !== 0) accepted++;
  };
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      current = frames[i % frames.length];
      demux.candidates(current, current.length, visit);
    }
  };
  run(Math.min(minPackets, 2000)); // warm-up: let the JIT settle
  let packets = 0;
  let best = Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  let elapsed = 0;
  while (packets < minPackets || elapsed < budgetMs) {
    const b0 = performance.now();
    run(frames.length);
    best = Math.min(best, ((performance.now() - b0) * 1e6) / frames.length);
    packets += frames.length;
    elapsed = performance.now() - t0;
    if (elapsed > budgetMs * 4) break;
  }
  if (accepted === 0) throw new Error('demux benchmark: no packet was accepted (broken setup)');
  return best;
}

export async function run(options: Options): Promise<Record<string, unknown>> {
  const sizes = options.quick ? [1, 10, 100] : [1, 10, 100, 1_000, 10_000];
  const template = compileExpression(`udp dst port ${TEMPLATE_PORT}`);
  // "A few general filters": held by three extra tasks.
  const general = ['arp', 'icmp', 'ether broadcast'].map((x) => compileExpression(x));
  const ns: number[] = [];
  const linearNs: number[] = [];
  for (const n of sizes) {
    const grants = [...Array(n).keys()].map((t) => grant(portProgram(template, BASE_PORT + t), t));
    for (const [i, p] of general.entries()) grants.push(grant(p, n + i));
    const indexed = new IndexedDemux();
    const linear = new LinearDemux();
    for (const g of grants) {
      indexed.add(g);
      linear.add(g);
    }
    // Mostly UDP to installed ports (spread over all tasks), some ARP and some to nobody.
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 256; i++) {
      frames.push(i % 16 === 0 ? arpFrame() : i % 16 === 1 ? udpFrame(9) : udpFrame(BASE_PORT + ((i * 7919) % n)));
    }
    const budget = options.quick ? 20 : 300;
    const a = measure(indexed, frames, options.quick ? 2_000 : 200_000, budget);
    const b = measure(linear, frames, options.quick ? 500 : n >= 1_000 ? 2_000 : 50_000, budget);
    ns.push(Number(a.toFixed(1)));
    linearNs.push(Number(b.toFixed(1)));
    options.log(
      `demux ${String(n).padStart(6)} tasks: indexed ${a.toFixed(1).padStart(9)} ns/packet, linear ${b.toFixed(1).padStart(11)} ns/packet (${(b / a).toFixed(1)}x)`,
    );
    // The engines the driver does not use, indexed, in the same run (the machine's load varies between runs).
    const alt: string[] = [];
    for (const engine of ['interpreter', 'per-filter'] as const) {
      const index = new IndexedDemux();
      for (const [t, g] of grants.entries()) index.add(grant(g.program, t, engine));
      const x = measure(index, frames, options.quick ? 2_000 : 200_000, budget);
      alt.push(`${engine} ${x.toFixed(1)} ns/packet (${(x / a).toFixed(2)}x)`);
    }
    options.log(`demux ${String(n).padStart(6)} tasks, other engines, indexed: ${alt.join(', ')}`);
  }
  const last = sizes.length - 1;
  options.log(
    `at ${sizes[last]} tasks: ${(ns[last] / ns[0]).toFixed(2)}x the cost at 1 task; linear scan ${(linearNs[last] / ns[last]).toFixed(0)}x slower`,
  );
  // The comparison stays in the log: the result's keys are documented (and charted by bench-all).
  return { tasks: sizes, ns_per_packet: ns, linear_ns_per_packet: linearNs };
}
