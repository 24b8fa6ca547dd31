import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(_program: Command): void {}

/** `exonet bench bpf`. */
export const benchmarks = { bpf: () => import('./bench/bpf.ts') };
