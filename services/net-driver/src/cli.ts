import type { Command } from 'commander';
import { registerDriverCommands } from './commands/driver.ts';
import { registerNicCommands } from './commands/nic.ts';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(program: Command): void {
  registerNicCommands(program);
  registerDriverCommands(program);
}

/**
 * `exonet bench nic`: frames per second through the RTL8169 model and its driver.
 * `exonet bench demux`: per-packet demultiplexing cost, merged index against a linear scan.
 */
export const benchmarks = { nic: () => import('./bench/nic.ts'), demux: () => import('./bench/demux.ts') };
