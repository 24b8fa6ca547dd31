/**
 * `exonet bench all`: every benchmark of the project in one go, with a progress bar; writes the JSON results,
 * a Markdown report and SVG charts to results/<date>/ and results/latest/.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from '@exonet/bench';
import cliProgress from 'cli-progress';
import type { BenchmarkLoader } from './bench.ts';
import { barChart, formatNumber, lineChart } from './bench-charts.ts';

/** Order of the run: cheap and self-contained first, the long end-to-end comparison last. */
const ORDER = ['bpf', 'ipc', 'wire', 'nic', 'demux', 'tcp', 'grants', 'revocation', 'e2e'];

/** Options of {@link runAllBenchmarks}. */
export interface BenchAllOptions {
  readonly quick: boolean;
  /** Results folder (default: results/ at the repository root). */
  readonly out?: string;
  /** Only these benchmarks (default: all). */
  readonly only?: readonly string[];
  /** Show a progress bar on stderr (default: when stderr is a terminal). */
  readonly progress?: boolean;
  /** Where benchmark log lines go (default: kept for the report only). */
  readonly log?: (line: string) => void;
  /** Date of the run (default: now); names the dated folder. */
  readonly date?: Date;
}

/** What one `bench all` run produced. */
export interface BenchAllResult {
  readonly dir: string;
  readonly latest: string;
  readonly results: Record<string, unknown>;
  readonly failed: string[];
}

/** One benchmark's outcome in results.json. */
interface Outcome {
  readonly seconds: number;
  readonly result?: Record<string, unknown>;
  readonly error?: string;
}

const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

function machineInfo(): Record<string, unknown> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    // Not a git checkout: the report says unknown.
  }
  const m = machine();
  // results.json's keys (snake case) predate the shared MachineInfo; kept so earlier results still compare.
  return {
    cpu: m.cpu,
    cores: m.cores,
    memory_gib: m.memoryGiB,
    kernel: m.kernel,
    node: m.node,
    load_at_start: m.load,
    commit,
  };
}

/**
 * Runs the benchmarks one after another (a failing one is recorded and the rest still run), then writes
 * results.json, report.md and the charts into `<out>/<YYYY-MM-DD>/` and `<out>/latest/`.
 */
export async function runAllBenchmarks(
  benchmarks: ReadonlyMap<string, BenchmarkLoader>,
  options: BenchAllOptions,
): Promise<BenchAllResult> {
  const known = [...benchmarks.keys()];
  for (const name of options.only ?? []) {
    if (!benchmarks.has(name)) throw new Error(`unknown benchmark "${name}"; known: ${known.join(', ')}`);
  }
  const names = [...ORDER.filter((n) => benchmarks.has(n)), ...known.filter((n) => !ORDER.includes(n))].filter(
    (n) => options.only === undefined || options.only.includes(n),
  );
  const date = options.date ?? new Date();
  const machine = machineInfo();
  const logLines: string[] = [];
  const showBar = options.progress ?? Boolean(process.stderr.isTTY);
  const bar = new cliProgress.SingleBar(
    {
      format: 'bench all |{bar}| {value}/{total} {name} ({duration_formatted})',
      stream: process.stderr,
      noTTYOutput: showBar,
      notTTYSchedule: 5000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  if (showBar) bar.start(names.length, 0, { name: names[0] ?? '' });
  const outcomes: Record<string, Outcome> = {};
  const failed: string[] = [];
  for (const [i, name] of names.entries()) {
    if (showBar) bar.update(i, { name });
    const log = (line: string) => {
      logLines.push(`[${name}] ${line}`);
      options.log?.(`[${name}] ${line}`);
    };
    const t0 = performance.now();
    try {
      const load = benchmarks.get(name) as BenchmarkLoader;
      const result = await (await load()).run({ quick: options.quick, log });
      outcomes[name] = { seconds: round1((performance.now() - t0) / 1000), result };
    } catch (err) {
      failed.push(name);
      const message = err instanceof Error ? err.message : String(err);
      log(`failed: ${message}`);
      outcomes[name] = { seconds: round1((performance.now() - t0) / 1000), error: message };
    }
  }
  if (showBar) {
    bar.update(names.length, { name: 'done' });
    bar.stop();
  }
  const results: Record<string, unknown> = {
    date: date.toISOString(),
    quick: options.quick,
    machine,
    benchmarks: outcomes,
  };
  const files = renderFiles(results, outcomes, logLines);
  const out = resolve(options.out ?? join(REPO_ROOT, 'results'));
  const dir = join(out, date.toISOString().slice(0, 10));
  const latest = join(out, 'latest');
  for (const target of [dir, latest]) {
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(join(target, file), text);
  }
  return { dir, latest, results, failed };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

type Json = Record<string, unknown>;

const isNumberArray = (v: unknown): v is (number | null)[] =>
  Array.isArray(v) && v.every((x) => x === null || typeof x === 'number');

/** The files of a run: results.json, report.md, the charts whose data is there, and the benchmarks' log. */
function renderFiles(results: Json, outcomes: Record<string, Outcome>, logLines: string[]): Record<string, string> {
  const files: Record<string, string> = { 'results.json': `${JSON.stringify(results, null, 2)}\n` };
  const charts: { file: string; caption: string }[] = [];
  const e2e = outcomes.e2e?.result;
  if (e2e && isNumberArray(e2e.receivers)) {
    const xs = e2e.receivers.map(Number);
    files['e2e.svg'] = lineChart(
      {
        title: '64-byte UDP from the wire to N receivers',
        xLabel: 'receivers',
        yLabel: 'datagrams delivered per second',
      },
      xs,
      [
        { name: 'exonet', values: isNumberArray(e2e.exonet_pps) ? e2e.exonet_pps : [] },
        { name: 'Linux UDP sockets', values: isNumberArray(e2e.linux_udp_pps) ? e2e.linux_udp_pps : [] },
        { name: 'Linux AF_PACKET', values: isNumberArray(e2e.linux_af_packet_pps) ? e2e.linux_af_packet_pps : [] },
      ],
    );
    charts.push({ file: 'e2e.svg', caption: 'Throughput against the number of receivers (e2e)' });
    if (isNumberArray(e2e.exonet_cpu_us_per_datagram)) {
      files['e2e-cpu.svg'] = lineChart(
        { title: 'CPU time per datagram delivered', xLabel: 'receivers', yLabel: 'CPU µs per datagram' },
        xs,
        [
          { name: 'exonet', values: e2e.exonet_cpu_us_per_datagram },
          {
            name: 'Linux UDP sockets',
            values: isNumberArray(e2e.linux_udp_cpu_us_per_datagram) ? e2e.linux_udp_cpu_us_per_datagram : [],
          },
          {
            name: 'Linux AF_PACKET',
            values: isNumberArray(e2e.linux_af_packet_cpu_us_per_datagram)
              ? e2e.linux_af_packet_cpu_us_per_datagram
              : [],
          },
        ],
      );
      charts.push({ file: 'e2e-cpu.svg', caption: 'CPU per datagram against the number of receivers (e2e)' });
    }
  }
  const demux = outcomes.demux?.result;
  if (demux && isNumberArray(demux.tasks)) {
    files['demux.svg'] = lineChart(
      { title: 'Demultiplexing cost per packet', xLabel: 'tasks (one filter each)', yLabel: 'ns per packet' },
      demux.tasks.map(Number),
      [
        { name: 'merged index', values: isNumberArray(demux.ns_per_packet) ? demux.ns_per_packet : [] },
        {
          name: 'every filter in turn',
          values: isNumberArray(demux.linear_ns_per_packet) ? demux.linear_ns_per_packet : [],
        },
      ],
    );
    charts.push({ file: 'demux.svg', caption: 'Per-packet cost against the number of tasks (demux)' });
  }
  const ipc = outcomes.ipc?.result;
  if (ipc) {
    const bars = Object.entries(ipc)
      .filter(([k, v]) => k.endsWith('_msgs_per_s') && typeof v === 'number')
      .map(([k, v]) => ({ label: k.replace(/_msgs_per_s$/, '').replace(/_/g, ' '), value: v as number }));
    if (bars.length > 0) {
      files['ipc.svg'] = barChart(
        { title: 'Queue rates between threads and processes', xLabel: 'messages per second', yLabel: '' },
        bars,
      );
      charts.push({ file: 'ipc.svg', caption: 'Queue rates (ipc)' });
    }
  }
  files['report.md'] = renderReport(results, outcomes, charts);
  files['log.txt'] = `${logLines.join('\n')}\n`;
  return files;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (typeof v === 'string' || typeof v === 'boolean') return String(v).replace(/\|/g, '\\|');
  return `\`${JSON.stringify(v).replace(/\|/g, '\\|').slice(0, 80)}\``;
}

const times = (v: unknown): string => (typeof v === 'number' ? `${cell(v)}x` : '-');

/** The Markdown report: machine, the e2e table first, then every benchmark's figures. */
function renderReport(results: Json, outcomes: Record<string, Outcome>, charts: { file: string; caption: string }[]) {
  const m = results.machine as Json;
  const lines: string[] = [
    `# exonet benchmarks, ${String(results.date).slice(0, 16).replace('T', ' ')} UTC${results.quick ? ' (quick: tiny sizes, not figures)' : ''}`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB, ${m.kernel}, Node ${m.node}; load average ${m.load_at_start} at the start (shared with other work); commit ${m.commit}.`,
    '',
  ];
  const e2e = outcomes.e2e?.result;
  if (e2e && Array.isArray(e2e.receivers)) {
    lines.push(
      '## End to end: 64-byte UDP datagrams from the wire to the application',
      '',
      '| receivers | exonet (pps) | Linux UDP (pps) | Linux AF_PACKET (pps) | exonet / UDP | exonet / AF_PACKET |',
      '|---:|---:|---:|---:|---:|---:|',
    );
    const col = (k: string, i: number) => (Array.isArray(e2e[k]) ? (e2e[k] as unknown[])[i] : undefined);
    e2e.receivers.forEach((n, i) => {
      const f = (k: string) => {
        const v = col(k, i);
        return typeof v === 'number' ? formatNumber(v) : '-';
      };
      lines.push(
        `| ${n} | ${f('exonet_pps')} | ${f('linux_udp_pps')} | ${f('linux_af_packet_pps')} | ${times(col('exonet_vs_linux_udp', i))} | ${times(col('exonet_vs_linux_af_packet', i))} |`,
      );
    });
    lines.push('');
    if (Array.isArray(e2e.exonet_cpu_us_per_datagram)) {
      lines.push(
        'CPU time per datagram delivered (µs; exonet: the whole process, Linux: receiver and sender):',
        '',
        '| receivers | exonet | Linux UDP | Linux AF_PACKET | UDP / exonet | AF_PACKET / exonet |',
        '|---:|---:|---:|---:|---:|---:|',
      );
      e2e.receivers.forEach((n, i) => {
        lines.push(
          `| ${n} | ${cell(col('exonet_cpu_us_per_datagram', i))} | ${cell(col('linux_udp_cpu_us_per_datagram', i))} | ${cell(col('linux_af_packet_cpu_us_per_datagram', i))} | ${times(col('linux_udp_cpu_vs_exonet', i))} | ${times(col('linux_af_packet_cpu_vs_exonet', i))} |`,
        );
      });
      lines.push('');
    }
  }
  for (const c of charts) lines.push(`![${c.caption}](${c.file})`, '');
  lines.push('## Every benchmark', '');
  for (const [name, o] of Object.entries(outcomes)) {
    lines.push(`### ${name} (${o.seconds} s)`, '');
    if (o.error !== undefined) {
      lines.push(`Failed: ${o.error}`, '');
      continue;
    }
    const r = o.result ?? {};
    const arrays = Object.entries(r).filter(([, v]) => isNumberArray(v) && (v as unknown[]).length > 0);
    const scalars = Object.entries(r).filter(([, v]) => !Array.isArray(v) && (typeof v !== 'object' || v === null));
    if (scalars.length > 0) {
      lines.push('| figure | value |', '|---|---:|');
      for (const [k, v] of scalars) lines.push(`| ${k} | ${cell(v)} |`);
      lines.push('');
    }
    // Lists of records (bpf's filters): one row each, columns from the first.
    for (const [k, v] of Object.entries(r)) {
      if (!Array.isArray(v) || v.length === 0 || typeof v[0] !== 'object' || v[0] === null) continue;
      const cols = Object.keys(v[0] as Json);
      lines.push(`${k}:`, '', `| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
      for (const row of v as Json[]) lines.push(`| ${cols.map((c) => cell(row[c])).join(' | ')} |`);
      lines.push('');
    }
    if (arrays.length > 0) {
      const len = Math.max(...arrays.map(([, v]) => (v as unknown[]).length));
      lines.push(`| ${arrays.map(([k]) => k).join(' | ')} |`, `|${arrays.map(() => '---:').join('|')}|`);
      for (let i = 0; i < len; i++) lines.push(`| ${arrays.map(([, v]) => cell((v as unknown[])[i])).join(' | ')} |`);
      lines.push('');
    }
  }
  lines.push('How these were measured and how to read them: docs/benchmarks.md.', '');
  return lines.join('\n');
}
