import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicJwk } from '@exonet/grant';
import { generateToken, startPermissionServer } from '@exonet/permission-server';

/** A real permission server (SQLite in a temporary folder, real HTTP on loopback) with a small policy. */
export async function policyServer(options: { stalenessSec?: number; listValiditySec?: number; port?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'exonet-ps-'));
  const adminToken = generateToken();
  const start = (port: number) =>
    startPermissionServer({
      store: `sqlite:${join(dir, 'ps.db')}`,
      listen: `127.0.0.1:${port}`,
      issuer: 'exonet-test',
      stalenessSec: options.stalenessSec ?? 300,
      listValiditySec: options.listValiditySec,
      heartbeatSec: 1,
      kek: new Uint8Array(32).fill(7),
      adminToken,
      logger: false,
    });
  let server = await start(options.port ?? 0);
  const port = Number(new URL(server.url).port);
  const call = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = (await res.json().catch(() => undefined)) as Record<string, unknown>;
    if (!res.ok)
      throw Object.assign(new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`), {
        status: res.status,
        body: json,
      });
    return json;
  };
  const admin = (method: string, path: string, body?: unknown) => call(adminToken, method, path, body);
  await admin('POST', '/v1/drivers', { id: 'drv-1', attributes: { ip: '10.77.0.2' } });
  const users: Record<string, string> = {};
  for (const [id, uid] of [
    ['alice', 1000],
    ['bob', 1001],
  ] as const) {
    await admin('POST', '/v1/principals', { id, uid, capabilities: ['bind-privileged'] });
    users[id] = (await admin('POST', `/v1/principals/${id}/tokens`)).token as string;
  }
  await admin('POST', '/v1/rules', {
    id: 'udp-in',
    who: { users: ['alice', 'bob'] },
    dir: 'rx',
    filter: 'udp and dst host {driver.ip} and dst port {port}',
    ports: [{ from: 1, to: 65535 }],
    maxLifetimeSec: 3600,
    sharing: 'either',
  });
  await admin('POST', '/v1/rules', {
    id: 'udp-out',
    who: { users: ['alice', 'bob'] },
    dir: 'tx',
    filter: 'udp and src host {driver.ip}',
    maxLifetimeSec: 3600,
  });
  /** Requests a grant for a holder key as a user. */
  const requestGrant = (user: string, holder: Uint8Array, body: Record<string, unknown>) =>
    call(users[user], 'POST', '/v1/grants', { driver: 'drv-1', holder: publicJwk(holder), ...body }) as Promise<{
      id: string;
      grant: string;
      expiresAt: number;
    }>;
  return {
    get server() {
      return server;
    },
    url: server.url,
    /** Stops the server (its store stays). */
    stop: () => server.close(),
    /** Starts it again on the same port with the same store and keys. */
    async restart() {
      server = await start(port);
    },
    admin,
    requestGrant,
    /** Bearer tokens of the users. */
    tokens: users,
    async close() {
      await server.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
