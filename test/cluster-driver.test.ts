/**
 * Issue 8 with the real driver (issue 6): permission-server replicas on a real 3-member etcd cluster, and a
 * DriverService (RTL8169 model, exokernel core, revocation-feed follower) whose feed comes from replica B
 * while its task's grant comes from replica A. A revocation at A removes the filter on that driver; without
 * etcd quorum the driver fails closed and recovers when etcd returns.
 */
import { randomBytes } from 'node:crypto';
import { DriverConnection } from '@exonet/client';
import { publicJwk } from '@exonet/grant';
import { Cable, createInThreadNic, DriverService } from '@exonet/net-driver';
import { EtcdCluster, generateToken, type PermissionServer, startPermissionServer } from '@exonet/permission-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ISSUER = 'exonet-cluster-driver';

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a real driver following one replica, grants from another, on a 3-member etcd cluster', () => {
  let cluster: EtcdCluster;
  const replicas: PermissionServer[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  const admin = generateToken();
  let alice = '';
  let driver: DriverService;

  const call = async (base: string, token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, json: (await res.json().catch(() => undefined)) as Record<string, unknown> };
  };

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
    const kek = new Uint8Array(randomBytes(32));
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await startPermissionServer({
          store: `etcd:${cluster.endpoints.join(',')}`,
          listen: '127.0.0.1:0',
          issuer: ISSUER,
          kek,
          adminToken: admin,
          heartbeatSec: 1,
          logger: false,
        }),
      );
    }
    const a = replicas[0].url;
    expect((await call(a, admin, 'POST', '/v1/drivers', { id: 'drv-1', attributes: { ip: '10.77.0.2' } })).status).toBe(
      201,
    );
    expect((await call(a, admin, 'POST', '/v1/principals', { id: 'alice', uid: 1000 })).status).toBe(201);
    alice = (await call(a, admin, 'POST', '/v1/principals/alice/tokens')).json.token as string;
    const rule = await call(a, admin, 'POST', '/v1/rules', {
      id: 'udp-in',
      who: { users: ['alice'] },
      dir: 'rx',
      filter: 'udp and dst host {driver.ip} and dst port {port}',
      ports: [{ from: 1024, to: 65535 }],
      maxLifetimeSec: 600,
      sharing: 'either',
    });
    expect(rule.status).toBe(201);

    const cable = new Cable();
    const peer = createInThreadNic({ wire: cable.b, mac: Uint8Array.of(2, 0, 0, 0, 0, 2) });
    peer.driver.start();
    cleanups.push(() => peer.close());
    // The driver follows replica B first (then A when B fails).
    driver = await DriverService.start({
      id: 'drv-1',
      wire: cable.a,
      servers: [replicas[1].url, replicas[0].url],
      issuer: ISSUER,
      mac: Uint8Array.of(0x00, 0xe0, 0x4c, 0, 0, 1),
      stalenessBoundMs: 4000,
    });
    cleanups.push(() => driver.close());
    await until(() => driver.follower!.isFresh(), 'the revocation feed');
  }, 120_000);

  afterAll(async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
    for (const r of replicas) {
      const cut = setTimeout(() => r.app.server.closeAllConnections(), 1000);
      await r.close().catch(() => {});
      clearTimeout(cut);
    }
    await cluster?.stop();
  }, 60_000);

  const grantFor = async (conn: DriverConnection, port: number) =>
    call(replicas[0].url, alice, 'POST', '/v1/grants', {
      driver: 'drv-1',
      dir: 'rx',
      filter: `udp dst port ${port}`,
      port,
      holder: publicJwk(conn.key.publicKey),
    });

  it('installs a grant from replica A; a revocation at A removes the filter on the driver following B', async () => {
    expect(driver.follower!.currentUrl).toBe(replicas[1].url);
    const conn = await DriverConnection.attach(driver.attach('alice').handle);
    cleanups.push(() => conn.close());
    const g = await grantFor(conn, 4000);
    expect(g.status).toBe(201);
    await conn.install(g.json.grant as string);
    expect(driver.core.grants.size).toBe(1);
    const revoked = await call(replicas[0].url, admin, 'POST', '/v1/revocations', {
      kind: 'jti',
      value: g.json.id,
      reason: 'cluster test',
    });
    expect(revoked.status).toBe(201);
    await until(() => driver.core.grants.size === 0, 'the filter removed on the driver');
  });

  it('fails closed without etcd quorum and recovers when etcd returns', async () => {
    const conn = await DriverConnection.attach(driver.attach('alice').handle);
    cleanups.push(() => conn.close());
    const g = await grantFor(conn, 4001);
    expect(g.status).toBe(201);
    await conn.install(g.json.grant as string);
    await cluster.killAll();
    const refused = await call(replicas[0].url, admin, 'POST', '/v1/revocations', { kind: 'jti', value: 'x' });
    expect(refused.status).toBe(503);
    expect((refused.json.error as { code: string }).code).toBe('EXO_ERR_STORE_UNAVAILABLE');
    await until(() => driver.core.suspended(), 'the driver failing closed', 60_000);
    await cluster.startAll(60_000);
    await until(() => !driver.core.suspended(), 'the driver recovering', 60_000);
  }, 180_000);
});
