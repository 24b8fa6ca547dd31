/**
 * Example: a task that asks for a grant and reads raw frames, with everything in one process.
 *
 *   node --import tsx examples/read-packets.ts
 *
 * It starts a permission server (SQLite in a temporary folder), a driver whose wire is a traffic generator
 * (an endless stream of frames of EtherType 0x88b5 addressed to the NIC), writes a rule that lets user "alice" receive that
 * EtherType, attaches a task as alice, obtains and installs the grant, and prints the first frames.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriverConnection, GrantClient } from '@exonet/client';
import { DriverService } from '@exonet/net-driver';
import { generateToken, hashToken, startPermissionServer } from '@exonet/permission-server';

const dir = mkdtempSync(join(tmpdir(), 'exonet-example-'));
const server = await startPermissionServer({
  store: `sqlite:${join(dir, 'ps.db')}`,
  listen: '127.0.0.1:0',
  logger: false,
});
const ctx = { actor: 'example' };
await server.store.put('drivers', { id: 'drv-1', attributes: {} }, ctx);
await server.store.put(
  'principals',
  {
    id: 'alice',
    uid: 1000,
    groups: [],
    capabilities: ['raw-ethertype'],
    admin: false,
    attributes: {},
    disabled: false,
  },
  ctx,
);
const token = generateToken();
await server.store.addToken(
  { hash: hashToken(token), principal: 'alice', createdAt: Math.floor(Date.now() / 1000) },
  ctx,
);
await server.store.put(
  'rules',
  {
    id: 'lab-frames',
    who: { users: ['alice'], groups: [], capabilities: [] },
    dir: 'rx',
    layer: 'task',
    filter: 'ether proto 0x88b5',
    ports: [],
    drivers: [],
    maxLifetimeSec: 60,
    sharing: 'shared',
    description: 'experimental EtherType',
  },
  ctx,
);

// An endless stream of 64-byte frames (the generator offers them as fast as the NIC takes them).
const driver = await DriverService.start({ id: 'drv-1', wire: 'gen:64', servers: [server.url] });

// The driver is the task's kernel: it names the principal; the task proves its own key.
const task = await DriverConnection.attach(driver.attach('alice').handle);
const grants = new GrantClient({ server: server.url, token, driver: 'drv-1', connection: task });
const held = await grants.acquire({ dir: 'rx', filter: 'ether proto 0x88b5' });
console.log(`grant ${held.id} installed, expires ${new Date(held.expiresAt * 1000).toISOString()}`);

let n = 0;
for await (const frame of task.frames()) {
  if (++n <= 3)
    console.log(`frame ${n}: ${frame.length} bytes, ethertype 0x${((frame[12] << 8) | frame[13]).toString(16)}`);
  if (n === 1000) break;
}
console.log(`received ${n} frames`);
grants.close();
await task.close();
await driver.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
