/**
 * The example tasks `exonet up` starts, one role per task, each with grants from the permission server:
 * - `arp-icmp`: answers ARP for the address and ICMP echo (ping);
 * - `udp-echo`: echoes UDP datagrams on port 7 (RFC 862);
 * - `http`: a small HTTP/1.1 server on port 80 over the task's own TCP.
 * Run as a worker thread or a process started by the driver service (see task-environment.ts); the worker
 * data (or EXONET_TASK_DATA) carries `{ role, server, token, ip }`.
 */
import { parentPort } from 'node:worker_threads';
import { GrantClient, type GrantWish } from '../grant-client.ts';
import { startExampleServices } from '../net/example-services.ts';
import { createStack } from '../net/stack.ts';
import { attachFromEnvironment } from '../task-environment.ts';

type Role = 'arp-icmp' | 'udp-echo' | 'http';

const WISHES: Record<Role, GrantWish[]> = {
  'arp-icmp': [
    { dir: 'rx', filter: 'arp or icmp', rule: 'arp-icmp-in' },
    { dir: 'tx', filter: 'arp or icmp', rule: 'arp-icmp-out' },
  ],
  'udp-echo': [
    { dir: 'rx', filter: 'udp dst port 7', port: 7, rule: 'udp-in' },
    { dir: 'tx', filter: 'udp src port 7', port: 7, rule: 'udp-out' },
  ],
  http: [
    { dir: 'rx', filter: 'tcp dst port 80', port: 80, rule: 'tcp-in' },
    { dir: 'tx', filter: 'tcp src port 80', port: 80, rule: 'tcp-out' },
  ],
};

function report(message: Record<string, unknown>): void {
  if (parentPort) parentPort.postMessage(message);
  else if (process.send) process.send(message);
}

async function main(): Promise<void> {
  const { connection, env } = await attachFromEnvironment();
  const role = String(env.data.role) as Role;
  const wishes = WISHES[role];
  if (!wishes) throw new Error(`unknown task role ${JSON.stringify(env.data.role)}`);
  const grants = new GrantClient({
    server: String(env.data.server),
    token: String(env.data.token),
    driver: env.driver,
    connection,
    onRenewError: (g, err) => report({ type: 'renew-error', role, grant: g.id, message: err.message }),
  });
  for (const wish of wishes) {
    const held = await grants.acquire(wish);
    report({ type: 'grant', role, id: held.id, dir: wish.dir, filter: wish.filter, expiresAt: held.expiresAt });
  }
  const stack = createStack({
    link: connection,
    ipv4: String(env.data.ip ?? '10.77.0.2/24'),
    arpResponder: role === 'arp-icmp',
    icmpEcho: role === 'arp-icmp',
  });
  const services =
    role === 'udp-echo'
      ? startExampleServices(stack, { httpPort: false })
      : role === 'http'
        ? startExampleServices(stack, { udpEchoPort: false })
        : null;
  connection.onEvent((e) => {
    report({ type: 'event', role, event: e });
    if (e.event === 'disconnect') process.exit(0);
  });
  report({ type: 'ready', role });
  const stop = () => {
    services?.close();
    grants.close();
    void connection.close().then(() => process.exit(0));
  };
  parentPort?.on('message', (m) => {
    if (m === 'stop') stop();
  });
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  report({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
});
