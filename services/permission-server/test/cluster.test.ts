/**
 * Issue 8 end to end: a real 3-member etcd cluster on loopback, three permission-server replicas with real
 * HTTP listeners sharing one identity, and stand-in drivers (the grant package's verifyGrant + the feed
 * follower + an installed-grant table; the real driver is issue 6) following different replicas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdStore } from '../src/store/etcd.ts';
import { EtcdCluster } from './support/etcd-cluster.ts';
import { waitFor } from './support/etcd-fixtures.ts';
import { type ApiResponse, api, clusterPolicy, Replicas, requestGrant } from './support/etcd-replicas.ts';
import { TestDriver } from './support/etcd-test-driver.ts';

const STALENESS_MS = 6000;

/** Repeats a request while it is refused as unavailable (503); any other answer than 201 fails. */
async function untilCreated(call: () => Promise<ApiResponse>): Promise<ApiResponse> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await call();
    if (res.status !== 503 || Date.now() > deadline) {
      expect(res.status, res.body).toBe(201);
      return res;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('permission-server replicas on a 3-member etcd cluster', () => {
  let cluster: EtcdCluster;
  let replicas: Replicas;
  let alice: string;
  const drivers: TestDriver[] = [];
  let port = 20_000;

  /** A driver following replica `i` (then the others, in order, when it fails). */
  const driverOn = (i: number) => {
    const urls = replicas.urls;
    const d = new TestDriver('drv1', [...urls.slice(i), ...urls.slice(0, i)], replicas.issuer, STALENESS_MS);
    drivers.push(d);
    d.start();
    return d;
  };
  const revoke = (i: number, kind: string, value: string) =>
    api(replicas.urls[i], 'POST', '/v1/revocations', { kind, value, reason: 'test' }, replicas.admin);

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
    replicas = new Replicas(cluster.endpoints);
    for (let i = 0; i < 3; i++) await replicas.start();
    ({ alice } = await clusterPolicy(replicas.urls[0], replicas.admin));
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(drivers.map((d) => d.close()));
    await replicas?.close();
    await cluster?.stop();
  }, 60_000);

  it('serves one identity: the same JWKS from every replica, policy written at one visible at all', async () => {
    const docs = await Promise.all(replicas.urls.map((u) => api(u, 'GET', '/.well-known/jwks.json')));
    for (const d of docs) expect(d.json).toEqual(docs[0].json);
    expect(docs[0].json.keys).toHaveLength(1);
    const rule = await api(replicas.urls[2], 'GET', '/v1/rules/high-udp', undefined, replicas.admin);
    expect(rule.status).toBe(200);
  });

  it('installs a grant from replica A on a driver following B; a revocation at A removes it there', async () => {
    const onB = driverOn(1);
    const onC = driverOn(2);
    await waitFor(() => onB.follower.isFresh() && onC.follower.isFresh(), 30_000, 'fresh feeds');
    const granted = await requestGrant(replicas.urls[0], alice, port++);
    expect(granted.status, granted.body).toBe(201);
    const installedB = await onB.install(granted.json.grant);
    expect(installedB).toEqual({ ok: true, jti: granted.json.id });
    expect((await onC.install(granted.json.grant)).ok).toBe(true);
    const revoked = await revoke(0, 'jti', granted.json.id);
    expect(revoked.status, revoked.body).toBe(201);
    await waitFor(() => !onB.installed.has(granted.json.id) && !onC.installed.has(granted.json.id), 30_000, 'removal');
    expect(onB.follower.lastSeq).toBeGreaterThanOrEqual(revoked.json.seq);
    // And a revoked grant no longer installs anywhere.
    expect(await onB.install(granted.json.grant)).toMatchObject({ ok: false, code: 'EXO_ERR_GRANT_REVOKED' });
  });

  it('rotates keys cluster-wide: concurrent rotations leave one active key that every replica signs with', async () => {
    const rotated = await Promise.all(
      [0, 1].map((i) => api(replicas.urls[i], 'POST', '/v1/keys/rotate', {}, replicas.admin)),
    );
    for (const r of rotated) expect(r.status, r.body).toBe(201);
    const activeKid = async (i: number) => {
      const r = await api(replicas.urls[i], 'GET', '/v1/keys', undefined, replicas.admin);
      const active = (r.json.items as { kid: string; state: string }[]).filter((k) => k.state === 'active');
      return active.length === 1 ? active[0].kid : undefined;
    };
    let kid: string | undefined;
    await waitFor(
      async () => {
        const kids = await Promise.all(replicas.urls.map((_, i) => activeKid(i)));
        kid = kids[0];
        const rotatedKids = rotated.map((r) => r.json.kid as string);
        return kid !== undefined && rotatedKids.includes(kid) && kids.every((k) => k === kid);
      },
      30_000,
      'one active key on every replica',
    );
    // A grant from C is signed with it and installs on a driver following A.
    const onA = driverOn(0);
    await waitFor(() => onA.follower.isFresh(), 30_000, 'fresh feed');
    const granted = await requestGrant(replicas.urls[2], alice, port++);
    expect(granted.status, granted.body).toBe(201);
    const header = JSON.parse(Buffer.from(granted.json.grant.split('.')[0], 'base64url').toString('utf8'));
    expect(header.kid).toBe(kid);
    expect((await onA.install(granted.json.grant)).ok).toBe(true);
  });

  it('lets exactly one of two replicas win every race for the same exclusive port', async () => {
    for (let round = 0; round < 25; round++) {
      const p = port++;
      const [a, b] = await Promise.all([
        requestGrant(replicas.urls[0], alice, p),
        requestGrant(replicas.urls[1], alice, p),
      ]);
      expect([a.status, b.status].sort(), `round ${round}: ${a.body} ${b.body}`).toEqual([201, 409]);
      const loser = a.status === 409 ? a : b;
      expect(loser.json.error.code).toBe('EXO_ERR_GRANT_CONFLICT');
    }
  });

  it('delivers every revocation to followers of other replicas while etcd compacts its history', async () => {
    const onB = driverOn(1);
    const onC = driverOn(2);
    await waitFor(() => onB.follower.isFresh() && onC.follower.isFresh(), 30_000, 'fresh feeds');
    const store = replicas.servers[0].store as EtcdStore;
    const seqs: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await revoke(0, 'jti', `compaction-${i}`);
      expect(r.status, r.body).toBe(201);
      seqs.push(r.json.seq);
      if (i % 10 === 5) await store.compact();
    }
    const last = seqs[seqs.length - 1];
    await waitFor(() => onB.follower.lastSeq >= last && onC.follower.lastSeq >= last, 30_000, 'all revocations');
    for (const seq of seqs) {
      expect(onB.appliedAt.has(seq), `seq ${seq} on B`).toBe(true);
      expect(onC.appliedAt.has(seq), `seq ${seq} on C`).toBe(true);
    }
  });

  it('keeps serving with one etcd member killed', async () => {
    const onC = driverOn(2);
    await waitFor(() => onC.follower.isFresh(), 30_000, 'fresh feed');
    await cluster.killMember(0);
    try {
      const granted = await requestGrant(replicas.urls[1], alice, port++);
      expect(granted.status, granted.body).toBe(201);
      expect((await onC.install(granted.json.grant)).ok).toBe(true);
      const revoked = await revoke(0, 'jti', granted.json.id);
      expect(revoked.status, revoked.body).toBe(201);
      await waitFor(() => !onC.installed.has(granted.json.id), 30_000, 'removal with a member down');
    } finally {
      cluster.startMember(0);
      await cluster.waitHealthy(60_000);
    }
  }, 120_000);

  it('refuses writes clearly without quorum, fails drivers closed, and recovers when etcd returns', async () => {
    const onA = driverOn(0);
    const onB = driverOn(1);
    await waitFor(() => onA.follower.isFresh() && onB.follower.isFresh(), 30_000, 'fresh feeds');
    const granted = await requestGrant(replicas.urls[2], alice, port++);
    expect(granted.status, granted.body).toBe(201);
    expect((await onA.install(granted.json.grant)).ok).toBe(true);

    await cluster.killAll();
    const refused = await revoke(1, 'jti', 'during-outage');
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('EXO_ERR_STORE_UNAVAILABLE');
    const refusedGrant = await requestGrant(replicas.urls[0], alice, port++);
    expect(refusedGrant.status).toBe(503);
    // Drivers fail closed once the feed is older than the staleness bound.
    await waitFor(() => onA.follower.staleSince !== null && onB.follower.staleSince !== null, 60_000, 'stale');
    expect(onA.installed.size).toBe(0);
    expect((await onB.install(granted.json.grant)).ok).toBe(false);

    await cluster.startAll(60_000);
    await waitFor(() => onA.follower.isFresh() && onB.follower.isFresh(), 60_000, 'fresh again');
    // The etcd3 client skips a member for up to 5 s after it failed (circuit breaker): retry until served.
    const after = await untilCreated(() => requestGrant(replicas.urls[0], alice, port++));
    expect((await onB.install(after.json.grant)).ok).toBe(true);
    await untilCreated(() => revoke(1, 'jti', after.json.id));
    await waitFor(() => !onB.installed.has(after.json.id), 30_000, 'revocation after recovery');
  }, 240_000);
});
