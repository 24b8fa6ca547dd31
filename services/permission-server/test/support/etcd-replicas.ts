/**
 * Several permission-server replicas over one etcd cluster, in this process but each with its own store
 * client and its own real HTTP listener: one cluster identity (same issuer, same key-encryption key, same
 * admin token, same key prefix), as `exonet permission-server --store etcd:...` would run them.
 */
import { randomBytes } from 'node:crypto';
import { generateHolderKey, publicJwk } from '@exonet/grant';
import { generateToken } from '../../src/auth.ts';
import { type PermissionServer, type PermissionServerOptions, startPermissionServer } from '../../src/server.ts';
import { EtcdStore } from '../../src/store/etcd.ts';

/** The answer of an API call. */
export interface ApiResponse {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test helper over JSON answers
  readonly json: any;
  readonly body: string;
}

/** One HTTP request to a replica (real HTTP through fetch). */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<ApiResponse> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, body: text };
}

/** Replicas sharing one identity. */
export class Replicas {
  readonly servers: PermissionServer[] = [];
  readonly admin = generateToken();
  readonly kek = new Uint8Array(randomBytes(32));
  readonly issuer = 'exonet-cluster-test';
  readonly prefix = `/exonet-${randomBytes(4).toString('hex')}/`;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly options: PermissionServerOptions = {},
  ) {}

  /** Base URLs in start order. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** Starts one more replica. */
  async start(): Promise<PermissionServer> {
    const store = new EtcdStore({
      endpoints: this.endpoints,
      prefix: this.prefix,
      watch: { resyncMs: 1000 },
    });
    const server = await startPermissionServer({
      store,
      listen: '127.0.0.1:0',
      issuer: this.issuer,
      kek: this.kek,
      adminToken: this.admin,
      logger: false,
      rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
      heartbeatSec: 1,
      ...this.options,
    });
    this.servers.push(server);
    return server;
  }

  /**
   * Closes every replica, one after the other. Open connections are cut after 1 s (a test ends abruptly;
   * graceful draining is the server's own tests' concern), and a close that still hangs is abandoned
   * after 20 s so a test run never waits forever.
   */
  async close(): Promise<void> {
    for (const server of this.servers) {
      const cut = setTimeout(() => server.app.server.closeAllConnections(), 1000);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        server.close().catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 20_000);
        }),
      ]);
      clearTimeout(timer);
      clearTimeout(cut);
    }
  }
}

/** A holder key for grant requests. */
export const holderKey = generateHolderKey();
export const holder = publicJwk(holderKey.publicKey);

/** A policy for cluster tests: driver drv1, users may receive high UDP ports, principal alice is a user. */
export async function clusterPolicy(base: string, admin: string): Promise<{ alice: string }> {
  const ok = (r: ApiResponse) => {
    if (r.status >= 300) throw new Error(`${r.status} ${r.body}`);
    return r;
  };
  ok(await api(base, 'POST', '/v1/drivers', { id: 'drv1', attributes: { ip: '10.77.0.2' } }, admin));
  ok(await api(base, 'POST', '/v1/groups', { id: 'users', capabilities: [] }, admin));
  ok(
    await api(
      base,
      'POST',
      '/v1/rules',
      {
        id: 'high-udp',
        who: { groups: ['users'] },
        dir: 'rx',
        filter: 'udp and dst port {port}',
        ports: [{ from: 1024, to: 65535 }],
        maxLifetimeSec: 600,
        sharing: 'either',
        resource: 'udp/{port}',
      },
      admin,
    ),
  );
  ok(await api(base, 'POST', '/v1/principals', { id: 'alice', uid: 1000, groups: ['users'] }, admin));
  const token = ok(await api(base, 'POST', '/v1/principals/alice/tokens', undefined, admin));
  return { alice: token.json.token as string };
}

/** Asks `base` for a grant on drv1 for UDP `port`. */
export function requestGrant(base: string, token: string, port: number, exclusive = true): Promise<ApiResponse> {
  return api(
    base,
    'POST',
    '/v1/grants',
    { driver: 'drv1', dir: 'rx', filter: `udp and dst port ${port}`, port, holder, exclusive, ttl: 60 },
    token,
  );
}
