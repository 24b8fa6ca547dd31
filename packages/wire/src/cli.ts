import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(_program: Command): void {}

/** `exonet bench wire`: parse, emit and flow-key rates. */
export const benchmarks = { wire: () => import('./bench/wire.ts') };
