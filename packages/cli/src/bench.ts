import type { Command } from 'commander';
import { runAllBenchmarks } from './bench-all.ts';

/** Options every benchmark receives. */
export interface BenchmarkOptions {
  /** Tiny sizes: the tests use it to check that a benchmark runs and emits well-formed output. */
  readonly quick: boolean;
  /** Progress and human-readable results (written to stderr so stdout's last line stays JSON). */
  readonly log: (line: string) => void;
}

/**
 * A benchmark module's shape: `export async function run(options)`, returning the JSON object that
 * `exonet bench NAME --json` prints on its last line. Packages export loaders of such modules from
 * their `cli.ts` as `benchmarks = { name: () => import('./bench/name.ts') }`.
 */
export interface BenchmarkModule {
  run(options: BenchmarkOptions): Promise<Record<string, unknown>>;
}

export type BenchmarkLoader = () => Promise<BenchmarkModule>;

export function registerBench(program: Command, benchmarks: ReadonlyMap<string, BenchmarkLoader>): void {
  const names = [...benchmarks.keys()];
  program
    .command('bench')
    .description(`run a benchmark: ${names.join(', ') || '(none yet)'}, or all of them (all)`)
    .argument('<name>', 'benchmark name, or all (every benchmark; writes results/<date>/ and results/latest/)')
    .option('--json', 'print one JSON object on the last line')
    .option('--quick', 'tiny sizes (used by the tests to check the output shape)')
    .option('--out <dir>', 'bench all: the results folder (default: results/ at the repository root)')
    .option('--only <names>', 'bench all: a comma-separated subset')
    .action(async (name: string, opts: { json?: boolean; quick?: boolean; out?: string; only?: string }) => {
      if (name === 'all') {
        const log = (line: string) => process.stderr.write(`${line}\n`);
        const all = await runAllBenchmarks(benchmarks, {
          quick: Boolean(opts.quick),
          out: opts.out,
          only: opts.only?.split(',').map((s) => s.trim()),
          // A progress bar on a terminal; the benchmarks' own lines otherwise (logs, CI).
          log: process.stderr.isTTY ? undefined : log,
        });
        if (all.failed.length > 0) process.exitCode = 1;
        process.stderr.write(
          `results in ${all.dir} and ${all.latest}${all.failed.length ? `; failed: ${all.failed.join(', ')}` : ''}\n`,
        );
        process.stdout.write(opts.json ? `${JSON.stringify(all.results)}\n` : `${all.latest}/report.md\n`);
        return;
      }
      const load = benchmarks.get(name);
      if (!load) throw new Error(`unknown benchmark "${name}"; known: ${names.join(', ') || 'none'}`);
      const bench = await load();
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const result = await bench.run({ quick: Boolean(opts.quick), log });
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
    });
}
