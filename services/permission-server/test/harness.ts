/** Test servers on temporary SQLite files, a known admin token, and a standard policy. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateHolderKey, publicJwk } from '@exonet/grant';
import { generateToken } from '../src/auth.ts';
import { type PermissionServer, type PermissionServerOptions, startPermissionServer } from '../src/server.ts';

/** An inject() reply; `json` is the parsed body of whatever shape the route returns. */
export interface Reply {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  readonly json: any;
  readonly body: string;
  readonly headers: Record<string, unknown>;
}

export interface TestServer {
  readonly server: PermissionServer;
  readonly admin: string;
  readonly dir: string;
  /** inject() with the admin token unless `token` is given (null: none). */
  call(
    method: string,
    url: string,
    body?: unknown,
    token?: string | null,
    headers?: Record<string, string>,
  ): Promise<Reply>;
  /** Creates a principal and returns its token. */
  principal(id: string, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServer(options: PermissionServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'exonet-ps-'));
  const admin = generateToken();
  const server = await startPermissionServer({
    store: `sqlite:${join(dir, 'ps.db')}`,
    listen: '127.0.0.1:0',
    adminToken: admin,
    logger: false,
    rateLimit: { max: 100_000, timeWindowMs: 60_000 },
    ...options,
  });
  const call: TestServer['call'] = async (method, url, body, token = admin, headers = {}) => {
    const res = await server.app.inject({
      method: method as 'GET',
      url,
      payload: body === undefined ? undefined : (body as object),
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
    let json: unknown;
    try {
      json = res.json();
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, body: res.body, headers: res.headers };
  };
  return {
    server,
    admin,
    dir,
    call,
    async principal(id, extra = {}) {
      const created = await call('POST', '/v1/principals', { id, uid: 1000, ...extra });
      if (created.status !== 201) throw new Error(`principal ${id}: ${created.body}`);
      const token = await call('POST', `/v1/principals/${id}/tokens`);
      return token.json.token as string;
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The standard policy: driver drv1 (ip 10.77.0.2), DNS for group dns, high UDP ports for everyone in users. */
export async function standardPolicy(t: TestServer): Promise<void> {
  const ok = (r: { status: number; body: string }) => {
    if (r.status >= 300) throw new Error(r.body);
  };
  ok(await t.call('POST', '/v1/drivers', { id: 'drv1', attributes: { ip: '10.77.0.2' } }));
  ok(await t.call('POST', '/v1/drivers', { id: 'drv2', attributes: { ip: '10.77.0.3' } }));
  ok(await t.call('POST', '/v1/groups', { id: 'dns', capabilities: ['bind-privileged'] }));
  ok(await t.call('POST', '/v1/groups', { id: 'users', capabilities: [] }));
  ok(
    await t.call('POST', '/v1/rules', {
      id: 'dns',
      who: { groups: ['dns'] },
      dir: 'rx',
      filter: 'udp and dst host {driver.ip} and dst port {port}',
      ports: [{ from: 53, to: 53 }],
      maxLifetimeSec: 120,
      sharing: 'either',
      resource: 'udp/{port}',
    }),
  );
  ok(
    await t.call('POST', '/v1/rules', {
      id: 'high-udp',
      who: { groups: ['users'] },
      dir: 'rx',
      filter: 'udp and dst port {port}',
      ports: [{ from: 1024, to: 65535 }],
      maxLifetimeSec: 600,
      sharing: 'either',
      resource: 'udp/{port}',
    }),
  );
}

export const holderKey = generateHolderKey();
export const holder = publicJwk(holderKey.publicKey);
