import type { Command } from 'commander';

/** `exonet up`: the whole system on one machine on embedded defaults. */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run the permission server, a driver with an RTL8169 model and the example tasks')
    .option('--wire <spec>', 'wire backend: sim (default) or udp:LOCALPORT:REMOTEHOST:REMOTEPORT', 'sim')
    .option('--ip <addr/prefix>', 'address the example tasks answer at', '10.77.0.2/24')
    .option('--data <dir>', 'data folder (SQLite store, keys)', '.exonet')
    .action(() => {
      process.stdout.write(
        [
          'exonet up is not assembled yet. What works today:',
          '  npx exonet --help          every command that exists',
          '  npm test                   the test suites',
          '',
        ].join('\n'),
      );
    });
}
