import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(_program: Command): void {}

/** `exonet bench nic`: frames per second through the RTL8169 model and its driver. */
export const benchmarks = { nic: () => import('./bench/nic.ts') };
