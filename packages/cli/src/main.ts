import * as bench from '@exonet/bench/cli';
import * as bpf from '@exonet/bpf/cli';
import * as client from '@exonet/client/cli';
import * as grant from '@exonet/grant/cli';
import * as ipc from '@exonet/ipc/cli';
import * as netDriver from '@exonet/net-driver/cli';
import * as permissionServer from '@exonet/permission-server/cli';
import * as wire from '@exonet/wire/cli';
import { Command, CommanderError } from 'commander';
import { type BenchmarkLoader, registerBench } from './bench.ts';
import { registerUp } from './up.ts';

/**
 * What a package contributes to the command line: its subcommands and, optionally, its benchmarks
 * (`exonet bench NAME`), loaded lazily so `exonet --help` stays fast.
 */
interface Contributor {
  registerCommands(program: Command): void;
  readonly benchmarks?: Readonly<Record<string, BenchmarkLoader>>;
}

/** Every package contributes its own subcommands; this is the one place that gathers them. */
const contributors: readonly Contributor[] = [bpf, ipc, wire, grant, client, permissionServer, netDriver, bench];

/**
 * Runs the `exonet` command line with the given arguments (without `node` and the script name).
 * @returns the process exit code
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('exonet')
    .description('exonet: an exokernel-style network subsystem (BPF grants, RTL8169 model, shared-memory queues)')
    .showHelpAfterError()
    .exitOverride();
  const benchmarks = new Map<string, BenchmarkLoader>();
  for (const contributor of contributors) {
    contributor.registerCommands(program);
    for (const [name, load] of Object.entries(contributor.benchmarks ?? {})) benchmarks.set(name, load);
  }
  registerUp(program);
  registerBench(program, benchmarks);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`exonet: ${message}\n`);
    return 1;
  }
}
