/**
 * Driver for native/libpcap-harness.c: builds it once with gcc against libpcap-dev (cached in the OS temp
 * folder, keyed by the source's hash) and runs batches of commands through it. Used by the differential
 * tests and by `exonet bench bpf`; not part of the package's public API.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Insn, Program } from '../insn.ts';

const SOURCE = fileURLToPath(new URL('../../native/libpcap-harness.c', import.meta.url));

let built: string | undefined;

/** Path of the compiled harness, building it on first use. Throws with gcc's output if it cannot. */
export function harnessPath(): string {
  if (built) return built;
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'exonet-bpf-harness');
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, `harness-${hash}`);
  if (!existsSync(exe)) {
    // Build under a unique name, then rename: concurrent test workers may race to build.
    const tmp = `${exe}.${process.pid}.${Date.now()}`;
    execFileSync('gcc', ['-O2', '-o', tmp, SOURCE, '-lpcap'], { stdio: ['ignore', 'pipe', 'pipe'] });
    renameSync(tmp, exe);
  }
  built = exe;
  return exe;
}

/** Runs one batch of harness commands; returns the output lines. */
export function runBatch(commands: readonly string[]): string[] {
  const input = `${commands.join('\n')}\n`;
  const out = execFileSync(harnessPath(), [], { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A packet as libpcap sees it: the captured bytes and the original length. */
export interface HarnessPacket {
  readonly data: Uint8Array;
  readonly wirelen: number;
}

const progLine = (p: Program): string => `P ${p.length} ${p.map((i) => `${i.code} ${i.jt} ${i.jf} ${i.k}`).join(' ')}`;
const packetLine = (pk: HarnessPacket): string =>
  `Q ${pk.wirelen >>> 0} ${pk.data.length ? Buffer.from(pk.data).toString('hex') : '-'}`;

/** pcap_compile for a link type: a program, or libpcap's error message. */
export type CompileOutcome = { readonly program: Program } | { readonly error: string };

/** Compiles expressions with libpcap (optimised unless told otherwise). */
export function pcapCompile(
  exprs: readonly string[],
  options: { optimize?: boolean; snaplen?: number /** DLT value (default 1, Ethernet). */; dlt?: number } = {},
) {
  const opt = options.optimize === false ? 0 : 1;
  const snaplen = options.snaplen ?? 262144;
  const out = runBatch([
    `L ${options.dlt ?? 1}`,
    ...exprs.map((e) => `C ${opt} ${snaplen} ${e.replace(/[\r\n]/g, ' ')}`),
  ]);
  const results: CompileOutcome[] = [];
  let at = 1; // the "OK" of L
  for (let i = 0; i < exprs.length; i++) {
    const head = out[at++] ?? '';
    if (head.startsWith('ERR')) {
      results.push({ error: head.slice(4) });
      continue;
    }
    const n = Number(head.slice(3));
    const program: Insn[] = [];
    for (let j = 0; j < n; j++) {
      const [code, jt, jf, k] = (out[at++] ?? '').split(' ').map(Number) as [number, number, number, number];
      program.push({ code, jt, jf, k });
    }
    results.push({ program });
  }
  return results;
}

/** libpcap's bpf_validate verdict for each program. */
export function pcapValidate(programs: readonly Program[]): boolean[] {
  const out = runBatch(programs.flatMap((p) => [progLine(p), 'V']));
  return programs.map((_, i) => out[2 * i + 1] === '1');
}

/** libpcap's bpf_image lines (what tcpdump -d prints) for a program. */
export function pcapImage(p: Program): string[] {
  const out = runBatch([progLine(p), 'I']);
  return out.slice(1, out.indexOf('END'));
}

/**
 * libpcap's bpf_filter value for every program on every packet. Only for programs bpf_validate accepts
 * and that have no opcode bpf_filter aborts on (every program our verifier accepts qualifies).
 */
export function pcapFilter(programs: readonly Program[], packets: readonly HarnessPacket[]): number[][] {
  const cmds = [...packets.map(packetLine), ...programs.flatMap((p) => [progLine(p), 'R'])];
  const out = runBatch(cmds);
  return programs.map((_, i) => {
    const line = out[packets.length + 2 * i + 1] ?? '';
    return packets.length === 0 ? [] : line.split(' ').map(Number);
  });
}

/**
 * Nanoseconds per packet of libpcap's bpf_filter over the packets: `reps` samples of `rounds` passes for
 * each program, all in one process, returned as samples per program.
 */
export function pcapBench(
  programs: readonly Program[],
  packets: readonly HarnessPacket[],
  rounds: number,
  reps = 1,
): number[][] {
  const cmds = [...packets.map(packetLine)];
  for (const p of programs) cmds.push(progLine(p), ...Array.from({ length: reps }, () => `B ${rounds}`));
  const out = runBatch(cmds);
  let at = packets.length;
  return programs.map(() => {
    at++; // the "OK" of P
    const samples = out.slice(at, at + reps).map(Number);
    at += reps;
    return samples;
  });
}
