import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { DriverService, listenForTasks, parseWireSpec, type Wire } from '@exonet/net-driver';
import {
  generateToken,
  hashToken,
  type PermissionServer,
  type Rule,
  startPermissionServer,
} from '@exonet/permission-server';
import { parseIpv4Cidr } from '@exonet/wire';
import { SimulatedPeer } from './sim-peer.ts';

/** Options of `exonet up` (its flags). */
export interface UpOptions {
  /** `sim` (default: the built-in simulated peer) or any wire spec of the driver (`udp:L:H:R`, `pcap:...`). */
  readonly wire: string;
  /** Address (with prefix) the example tasks answer at. */
  readonly ip: string;
  /** Data folder: the permission server's SQLite file, its sealed keys, tokens. */
  readonly data: string;
  /** Permission server listen address (default 127.0.0.1:7480; port 0 picks one). */
  readonly listen?: string;
  readonly log: (line: string) => void;
}

/** A running `exonet up`. */
export interface Up {
  readonly server: PermissionServer;
  readonly driver: DriverService;
  readonly peer: SimulatedPeer | null;
  readonly tasks: readonly { role: string; worker: Worker }[];
  /**
   * Where task processes of this machine's user attach (the driver's attach socket), and the file with
   * what they need to get grants: `{ socket, server, token, principal, driver, ip }` (mode 0600).
   */
  readonly local: { readonly socket: string; readonly file: string; readonly principal: string };
  /** Grants the tasks hold, as they reported them. */
  readonly grants: { role: string; id: string; dir: string; filter: string; expiresAt: number }[];
  close(): Promise<void>;
}

const DRIVER_ID = 'exonet-0';
const SERVICES = 'net-services';
/** The principal of processes of the user running `exonet up` that attach through the socket. */
const LOCAL = 'local-user';
const ROLES = ['arp-icmp', 'udp-echo', 'http'] as const;

/** The policy `exonet up` needs, written idempotently into the store. */
function upRules(): Omit<Rule, 'version'>[] {
  // The user's own processes may use UDP and TCP ports too (below 1024 only with bind-privileged, which
  // they lack), never ARP or ICMP, which the example task answers for the address.
  const base = { who: { users: [SERVICES], groups: [], capabilities: [] }, drivers: [], description: '' };
  const alsoLocal = { who: { users: [SERVICES, LOCAL], groups: [], capabilities: [] } };
  const rule = (id: string, dir: 'rx' | 'tx', filter: string, ports: boolean): Omit<Rule, 'version'> => ({
    ...base,
    id,
    dir,
    layer: 'task',
    filter,
    ports: ports ? [{ from: 1, to: 65_535 }] : [],
    maxLifetimeSec: 300,
    sharing: 'either',
    description: `exonet up: ${id}`,
  });
  return [
    rule('arp-icmp-in', 'rx', 'arp or (icmp and dst host {driver.ip})', false),
    rule('arp-icmp-out', 'tx', 'arp or (icmp and src host {driver.ip})', false),
    { ...rule('udp-in', 'rx', 'udp and dst host {driver.ip} and dst port {port}', true), ...alsoLocal },
    { ...rule('udp-out', 'tx', 'udp and src host {driver.ip} and src port {port}', true), ...alsoLocal },
    { ...rule('tcp-in', 'rx', 'tcp and dst host {driver.ip} and dst port {port}', true), ...alsoLocal },
    { ...rule('tcp-out', 'tx', 'tcp and src host {driver.ip} and src port {port}', true), ...alsoLocal },
  ];
}

/**
 * Starts the whole system on one machine: the permission server on a SQLite file in the data folder, a driver
 * with an RTL8169 model on the given wire, and the example tasks with grants from the server.
 */
export async function runUp(options: UpOptions): Promise<Up> {
  const cidr = parseIpv4Cidr(options.ip);
  if (cidr === null)
    throw new Error(`--ip: expected an IPv4 address with prefix, e.g. 10.77.0.2/24; got "${options.ip}"`);
  // The wire spec is checked before anything starts (the driver would only refuse it after the server is up).
  if (options.wire !== 'sim') parseWireSpec(options.wire);
  const ip = options.ip.split('/')[0];
  const data = resolve(options.data);
  mkdirSync(data, { recursive: true });
  const log = options.log;

  log(`exonet up: data in ${data}`);
  const server = await startPermissionServer({
    store: `sqlite:${resolve(data, 'permission-server.db')}`,
    listen: options.listen ?? '127.0.0.1:7480',
    issuer: 'exonet-local',
    logger: false,
  });
  const cleanup: (() => Promise<void>)[] = [() => server.close()];
  try {
    const ctx = { actor: 'exonet-up' };
    await server.store.put('drivers', { id: DRIVER_ID, attributes: { ip } }, ctx);
    const token = await principalWithToken(server, SERVICES, 0, ['bind-privileged', 'receive-broadcast']);
    const uid = process.getuid?.() ?? 0;
    const localToken = await principalWithToken(server, LOCAL, uid, []);
    for (const r of upRules()) await server.store.put('rules', r, ctx);
    log(`permission server: ${server.url} (SQLite ${resolve(data, 'permission-server.db')})`);

    let peer: SimulatedPeer | null = null;
    let wire: string | Wire = options.wire;
    if (options.wire === 'sim') {
      peer = new SimulatedPeer(`${derivePeer(ip)}/${cidr.prefixLength}`, ip);
      wire = peer;
    }
    const driver = await DriverService.start({
      id: DRIVER_ID,
      wire,
      servers: [server.url],
      issuer: 'exonet-local',
      stalenessBoundMs: 30_000,
    });
    cleanup.push(() => driver.close());
    // A Unix socket path holds at most 107 bytes: a deep data folder gets its socket in the temp folder.
    let socketPath = resolve(data, 'driver.sock');
    if (Buffer.byteLength(socketPath) > 100) {
      const tag = createHash('sha256').update(data).digest('hex').slice(0, 12);
      socketPath = resolve(tmpdir(), `exonet-up-${tag}.sock`);
    }
    const attach = await listenForTasks(driver, {
      path: socketPath,
      principalOf: (peer) => (peer.uid === uid ? LOCAL : undefined),
      mode: 0o600,
    });
    cleanup.push(() => attach.close());
    const localFile = resolve(data, 'local-task.json');
    writeFileSync(
      localFile,
      `${JSON.stringify({ socket: socketPath, server: server.url, token: localToken, principal: LOCAL, driver: DRIVER_ID, ip: options.ip }, null, 2)}\n`,
      { mode: 0o600 },
    );
    chmodSync(localFile, 0o600);
    log(
      `driver ${DRIVER_ID}: RTL8169 model, MAC ${driver.core.mac}, wire ${typeof wire === 'string' ? wire : wire.description}`,
    );

    const grants: Up['grants'] = [];
    const tasks: { role: string; worker: Worker }[] = [];
    const taskModule = new URL(import.meta.resolve('@exonet/client')).pathname.replace(
      /index\.ts$/,
      'tasks/service-task.ts',
    );
    await Promise.all(
      ROLES.map(
        (role) =>
          new Promise<void>((ready, fail) => {
            const worker = driver.startWorkerTask(taskModule, SERVICES, {
              role,
              server: server.url,
              token,
              ip: options.ip,
            });
            tasks.push({ role, worker });
            worker.on('message', (m: Record<string, unknown>) => {
              if (m.type === 'grant') {
                grants.push(m as unknown as Up['grants'][number]);
              } else if (m.type === 'ready') ready();
              else if (m.type === 'error') fail(new Error(`task ${role}: ${String(m.message)}`));
              else if (m.type === 'event') log(`task ${role}: ${JSON.stringify(m.event)}`);
              else if (m.type === 'renew-error') log(`task ${role}: renewal failed: ${String(m.message)}`);
            });
            worker.on('exit', (code) => {
              if (code !== 0) fail(new Error(`task ${role} exited with code ${code}`));
            });
          }),
      ),
    );
    for (const g of grants) {
      log(
        `  grant ${g.id} for ${g.role}: ${g.dir} "${g.filter}", expires ${new Date(g.expiresAt * 1000).toISOString()} (renewed automatically)`,
      );
    }
    peer?.start(log);
    return {
      server,
      driver,
      peer,
      tasks,
      grants,
      local: { socket: socketPath, file: localFile, principal: LOCAL },
      async close() {
        await peer?.close();
        while (cleanup.length > 0) await cleanup.pop()!();
      },
    };
  } catch (err) {
    while (cleanup.length > 0) await cleanup.pop()!().catch(() => {});
    throw err;
  }
}

/** Writes a principal (idempotently) and gives it one fresh bearer token, replacing any earlier ones. */
async function principalWithToken(
  server: PermissionServer,
  id: string,
  uid: number,
  capabilities: string[],
): Promise<string> {
  const ctx = { actor: 'exonet-up' };
  await server.store.put(
    'principals',
    { id, uid, groups: [], capabilities, admin: false, attributes: {}, disabled: false },
    ctx,
  );
  await server.store.deleteTokens(id, ctx);
  const token = generateToken();
  await server.store.addToken({ hash: hashToken(token), principal: id, createdAt: Math.floor(Date.now() / 1000) }, ctx);
  return token;
}

/** The simulated peer takes .1 of the task's network, or .3 when the task itself is .1. */
function derivePeer(ip: string): string {
  const parts = ip.split('.').map(Number);
  parts[3] = parts[3] === 1 ? 3 : 1;
  return parts.join('.');
}
