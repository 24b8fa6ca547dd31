import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(_program: Command): void {}

/** `exonet bench ipc`: rings between threads and processes against postMessage and a Unix socket. */
export const benchmarks = { ipc: () => import('./bench/ipc.ts') };
