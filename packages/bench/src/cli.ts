import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line (none: it contributes benchmarks). */
export function registerCommands(_program: Command): void {}

/** `exonet bench e2e`: UDP datagrams from the wire to 1, 100 and 1,000 receivers, exonet against Linux. */
export const benchmarks = { e2e: () => import('./bench/e2e.ts') };
