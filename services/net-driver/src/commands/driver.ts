import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { FirewallConfig } from '../core/firewall.ts';
import { startAdminHttp } from '../service/admin-http.ts';
import { type AttachSocket, listenForTasks, parsePrincipalMap, passwdPrincipals } from '../service/attach-socket.ts';
import { DriverService, type DriverStatus } from '../service/driver-service.ts';
import { WIRE_SPEC_FORMS } from '../wire/spec.ts';
import { parseMac } from './nic.ts';

/** `exonet driver` (the service) and `exonet driver status`. */
export function registerDriverCommands(program: Command): void {
  const driver = program
    .command('driver')
    .description('a network driver service: RTL8169 model, exokernel core, grants from permission servers')
    .option('--id <id>', 'driver id (the aud of its grants)', 'exonet-0')
    .option('--wire <spec>', `wire: ${WIRE_SPEC_FORMS.join(' | ')}`, 'null')
    .option('--server <urls>', 'permission server URL(s), comma-separated (replicas)', 'http://127.0.0.1:7480')
    .option('--jwks <file>', 'issuer JWKS file for offline use (no revocation feed)')
    .option('--issuer <iss>', 'expected issuer of grants and revocation lists')
    .option('--firewall <file>', 'system firewall: JSON { "rules": [{ "action", "filter", "dir" }], "default" }')
    .option('--staleness <seconds>', 'fail closed when the revocation feed is older than this', '60')
    .option('--mac <mac>', 'station address')
    .option('--listen <host:port>', 'operator endpoint (status, metrics)', '127.0.0.1:7481')
    .option(
      '--attach-socket <path>',
      'Unix socket where task processes attach (principal named by their uid); "none" to disable',
      '(a tmp path named after the driver id)',
    )
    .option(
      '--attach-principal <uid=principal>',
      'the principal of a uid attaching through the socket (repeatable; default: its /etc/passwd name)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .action(async (opts: Record<string, string | undefined> & { attachPrincipal?: string[] }) => {
      const principals = parsePrincipalMap(opts.attachPrincipal ?? []);
      const staleness = Number(opts.staleness);
      if (!(staleness > 0))
        throw new Error(`--staleness: expected a positive number of seconds, got "${opts.staleness}"`);
      const firewall = opts.firewall ? (readJson(opts.firewall, '--firewall') as FirewallConfig) : undefined;
      const jwks = opts.jwks ? readJson(opts.jwks, '--jwks') : undefined;
      const servers = jwks ? [] : (opts.server ?? '').split(',').filter((s) => s !== '');
      for (const server of servers) {
        if (!URL.canParse(server) || !/^https?:$/.test(new URL(server).protocol)) {
          throw new Error(`--server: "${server}" is not an http:// or https:// URL`);
        }
      }
      const service = await DriverService.start({
        id: opts.id ?? 'exonet-0',
        wire: opts.wire ?? 'null',
        servers,
        jwks,
        issuer: opts.issuer,
        firewall,
        stalenessBoundMs: staleness * 1000,
        mac: opts.mac ? parseMac(opts.mac) : undefined,
      });
      const socketPath =
        opts.attachSocket === undefined || opts.attachSocket.startsWith('(')
          ? join(tmpdir(), `exonet-${service.id.replace(/[^A-Za-z0-9._-]/g, '_')}.sock`)
          : opts.attachSocket;
      let admin: Awaited<ReturnType<typeof startAdminHttp>> | undefined;
      let attach: AttachSocket | undefined;
      try {
        admin = await startAdminHttp(service, opts.listen ?? '127.0.0.1:7481');
        if (socketPath !== 'none') {
          attach = await listenForTasks(service, { path: socketPath, principalOf: passwdPrincipals(principals) });
        }
      } catch (err) {
        // Whatever started must stop, or the process would stay up after reporting the error.
        await admin?.close();
        await service.close();
        throw err;
      }
      const out = (l: string) => process.stdout.write(`${l}\n`);
      out(`driver ${service.id}: MAC ${service.core.mac}, wire ${opts.wire}`);
      out(`  grants from ${servers.length > 0 ? servers.join(', ') : `${opts.jwks} (offline: no revocation feed)`}`);
      if (attach) out(`  tasks attach at ${attach.path} (attachViaSocket in @exonet/client)`);
      out(`  status and metrics at ${admin.url}/status, ${admin.url}/metrics; stop with Ctrl-C`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await attach?.close();
      await admin.close();
      await service.close();
    });

  driver
    .command('status')
    .description("a running driver's tasks, grants and their expiry, and counters")
    .option('--url <url>', 'the driver operator endpoint', 'http://127.0.0.1:7481')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { url: string; json?: boolean }) => {
      let res: Response;
      try {
        res = await fetch(`${opts.url.replace(/\/+$/, '')}/status`, { signal: AbortSignal.timeout(5000) });
      } catch (err) {
        throw new Error(`cannot reach the driver at ${opts.url}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!res.ok) throw new Error(`${opts.url}/status: HTTP ${res.status}`);
      const s = (await res.json()) as DriverStatus;
      process.stdout.write(opts.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
    });
}

function readJson(file: string, flag: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${flag}: ${file} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The human-readable form of a driver's status. */
export function formatStatus(s: DriverStatus): string {
  const now = Date.now() / 1000;
  const lines = [
    `driver ${s.id}  MAC ${s.mac}  link ${s.link.up ? `up ${s.link.speed} Mb/s` : 'down'}${s.suspended ? '  FAILING CLOSED (revocation feed stale)' : ''}`,
    s.feed
      ? `feed ${s.feed.url ?? '(none reachable)'}  seq ${s.feed.lastSeq}  ${s.feed.validUntil === 0 ? 'no verified list yet' : `list valid ${Math.round(s.feed.validUntil - now)} s more`}`
      : 'feed: none (offline JWKS)',
    `frames in ${s.counters.rxFrames} (to tasks ${s.counters.rxCopies}, unclaimed ${s.counters.rxUnclaimed})  out ${s.counters.txSent}  refused ${s.counters.txDenied}  flows ${s.flows}`,
    `tasks ${s.tasks.length}:`,
  ];
  for (const t of s.tasks) {
    lines.push(
      `  #${t.id} ${t.principal}: rx ${t.counters.rxDelivered} (queue full ${t.counters.rxQueueFull}), tx ${t.counters.txSent}, refused task/user/firewall/conntrack ${t.counters.txDeniedTask}/${t.counters.txDeniedUser}/${t.counters.txDeniedFirewall}/${t.counters.txDeniedConntrack}`,
    );
    for (const g of t.grants) {
      lines.push(
        `      ${g.jti} ${g.dir}/${g.layer}${g.excl ? ' exclusive' : ''} rule ${g.rule}, expires in ${Math.round(g.exp - now)} s`,
      );
    }
  }
  if (Object.keys(s.refusals).length > 0) lines.push(`refused installs: ${JSON.stringify(s.refusals)}`);
  return `${lines.join('\n')}\n`;
}
