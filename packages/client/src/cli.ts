import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(_program: Command): void {}

/** `exonet bench tcp`: bulk TCP throughput between two stacks in memory. */
export const benchmarks = { tcp: () => import('./bench/tcp.ts') };
