/**
 * Example: your own task process, started from a shell, next to a running `exonet up`. It attaches through
 * the driver's attach socket (the driver names it by your uid), asks the permission server for UDP grants on
 * one port with the token `exonet up` wrote for your user, and echoes datagrams on that port.
 *
 *   npm start &                                            # exonet up, data in .exonet/
 *   node --import tsx examples/udp-echo-process.ts --port 5007 [--data .exonet]
 *
 * With `exonet up --wire udp:...` and a Linux namespace as the peer: `echo hi | nc -u -w1 10.77.0.2 5007`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { attachViaSocket, createStack, GrantClient, startExampleServices } from '@exonet/client';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '5007' }, data: { type: 'string', default: '.exonet' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1024 || port > 65535) {
  throw new Error(`--port: expected a port from 1024 to 65535, got "${values.port}"`);
}
const local = JSON.parse(readFileSync(join(values.data ?? '.exonet', 'local-task.json'), 'utf8')) as {
  socket: string;
  server: string;
  token: string;
  driver: string;
  ip: string;
};

const { connection, principal } = await attachViaSocket(local.socket);
const grants = new GrantClient({ server: local.server, token: local.token, driver: local.driver, connection });
await grants.acquire({ dir: 'rx', filter: `udp dst port ${port}`, port, rule: 'udp-in' });
await grants.acquire({ dir: 'tx', filter: `udp src port ${port}`, port, rule: 'udp-out' });
const stack = createStack({ link: connection, ipv4: local.ip });
const services = startExampleServices(stack, { udpEchoPort: port, httpPort: false });
process.stdout.write(`attached as ${principal}; echoing UDP on ${local.ip.split('/')[0]}:${port}\n`);
process.send?.({ type: 'ready' });

const stop = () => {
  services.close();
  grants.close();
  void connection.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
