import type { Command } from 'commander';
import { runUp, type Up } from './up/run-up.ts';

/** `exonet up` (what `npm start` runs): the whole system on one machine on embedded defaults. */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run the permission server, a driver with an RTL8169 model and the example tasks')
    .option(
      '--wire <spec>',
      'sim (a built-in simulated peer), udp:LOCALPORT:REMOTEHOST:REMOTEPORT, pcap:..., null',
      'sim',
    )
    .option('--ip <addr/prefix>', 'address the example tasks answer at', '10.77.0.2/24')
    .option('--data <dir>', 'data folder (SQLite store, sealed keys)', '.exonet')
    .option('--listen <host:port>', 'permission server address', '127.0.0.1:7480')
    .option('--for <seconds>', 'stop by itself after this many seconds (default: run until Ctrl-C)')
    .action(async (opts: { wire: string; ip: string; data: string; listen: string; for?: string }) => {
      const log = (line: string) => process.stdout.write(`${line}\n`);
      const seconds = opts.for === undefined ? undefined : Number(opts.for);
      if (seconds !== undefined && !(seconds > 0))
        throw new Error(`--for: expected a positive number of seconds, got "${opts.for}"`);
      log('exonet up: starting (permission server, driver, example tasks)...');
      const up = await runUp({ wire: opts.wire, ip: opts.ip, data: opts.data, listen: opts.listen, log });
      printStatus(up, opts.ip, log);
      const statusTimer = setInterval(() => log(summary(up)), 10_000);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        if (seconds !== undefined) setTimeout(stop, seconds * 1000).unref();
      });
      clearInterval(statusTimer);
      log('exonet up: stopping...');
      log(summary(up));
      await up.close();
      log('exonet up: stopped cleanly');
    });
}

function printStatus(up: Up, ip: string, log: (line: string) => void): void {
  log('');
  log('exonet is up:');
  log(`  tasks answer at      ${ip} (ARP and ping, UDP echo on port 7, HTTP on port 80)`);
  log(`  permission server    ${up.server.url}  (OpenAPI at ${up.server.url}/docs)`);
  log(`  driver               ${up.driver.id}, MAC ${up.driver.core.mac}`);
  log(`  tasks                ${up.tasks.map((t) => t.role).join(', ')}`);
  log(`  grants               ${up.grants.length} installed, renewed before they expire`);
  log(`  your own tasks       attach at ${up.local.socket} as ${up.local.principal} (${up.local.file};`);
  log('                       e.g. node --import tsx examples/udp-echo-process.ts --port 5007)');
  if (up.peer) log(`  wire                 ${up.peer.description}`);
  log('  stop with Ctrl-C');
  log('');
}

function summary(up: Up): string {
  const s = up.driver.status();
  const c = s.counters;
  const peer = up.peer?.stats;
  return [
    `status: frames in ${c.rxFrames} (to tasks ${c.rxCopies}, unclaimed ${c.rxUnclaimed}), out ${c.txSent}, refused ${c.txDenied}; tasks ${s.tasks.length}, grants ${s.tasks.reduce((n, t) => n + t.grants.length, 0)}, flows ${s.flows}${s.suspended ? ', FAILING CLOSED (revocation feed stale)' : ''}`,
    peer
      ? `; peer: ping ${peer.pingReplies}/${peer.pings}, udp echo ${peer.udpEchoed}/${peer.udpSent}, http ${peer.httpOk}/${peer.httpRequests}`
      : '',
  ].join('');
}
