import type { Command } from 'commander';

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(_program: Command): void {}
