/**
 * The etcd store against a real 3-member etcd cluster on loopback: policy CAS, keys, exclusive claims
 * under racing replicas, revocations as records with a cluster-wide sequence, watches across replicas and
 * compaction, and clear refusals without quorum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore, StoreUnavailableError } from '../src/store/etcd.ts';
import { watchRevocationRecords } from '../src/store/etcd-watch.ts';
import type { RevocationEntry } from '../src/store/store.ts';
import { storeContract } from './store-contract.ts';
import { EtcdCluster } from './support/etcd-cluster.ts';
import { grantRecord, keyRecord, waitFor } from './support/etcd-fixtures.ts';

const ctx = { actor: 'admin', requestId: 'r1' };
const now = () => Math.floor(Date.now() / 1000);

let cluster: EtcdCluster;
let contractStores = 0;

beforeAll(async () => {
  cluster = await EtcdCluster.start();
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

// The same contract as the SQLite store; every store gets its own key prefix, so each starts empty.
storeContract(
  'etcd',
  async () => new EtcdStore({ endpoints: cluster.endpoints, prefix: `/contract${contractStores++}/` }),
);

describe('etcd store on a 3-member cluster', () => {
  const stores: EtcdStore[] = [];
  let a: EtcdStore;
  let b: EtcdStore;

  const newStore = async (prefix = '/t/') => {
    const s = new EtcdStore({ endpoints: cluster.endpoints, prefix, watch: { resyncMs: 500 } });
    await s.open();
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    a = await newStore();
    b = await newStore();
  }, 60_000);

  afterAll(async () => {
    for (const s of stores) await s.close();
  }, 60_000);

  it('pings and keeps policy objects with CAS versions visible to every replica', async () => {
    await a.ping();
    const rule = {
      id: 'dns',
      who: { users: ['alice'], groups: [], capabilities: [] },
      dir: 'rx' as const,
      layer: 'task' as const,
      filter: 'udp port {port}',
      ports: [{ from: 53, to: 53 }],
      drivers: [],
      maxLifetimeSec: 300,
      sharing: 'either' as const,
      description: 'dns',
    };
    const created = await a.put('rules', rule, ctx, 0);
    expect(created.ok).toBe(true);
    if (!created.ok) return;
    expect(await a.put('rules', rule, ctx, 0)).toEqual({ ok: false, reason: 'version' });
    const seen = await b.get('rules', 'dns');
    expect(seen?.version).toBe(created.value.version);
    const stale = await b.put('rules', { ...rule, description: 'x' }, ctx, created.value.version - 1);
    expect(stale).toEqual({ ok: false, reason: 'version' });
    const updated = await b.put('rules', { ...rule, description: 'y' }, ctx, created.value.version);
    expect(updated.ok && updated.value.version > created.value.version).toBe(true);
    expect((await a.list('rules')).map((r) => r.description)).toEqual(['y']);
    expect(await a.delete('rules', 'dns', ctx)).toBe(true);
    expect(await b.delete('rules', 'dns', ctx)).toBe(false);
    expect(await b.get('rules', 'dns')).toBeUndefined();
    const audit = await a.listAudit(0, 100);
    expect(audit.map((r) => r.action)).toEqual(expect.arrayContaining(['rules.put', 'rules.delete']));
    for (let i = 1; i < audit.length; i++) expect(audit[i].seq).toBeGreaterThan(audit[i - 1].seq);
  });

  it("stores tokens by hash and deletes a principal's tokens", async () => {
    await a.addToken({ hash: 'h1', principal: 'bob', createdAt: 1 }, ctx);
    await a.addToken({ hash: 'h2', principal: 'bob', createdAt: 2 }, ctx);
    await a.addToken({ hash: 'h3', principal: 'carol', createdAt: 3 }, ctx);
    expect(await b.findToken('h2')).toEqual({ hash: 'h2', principal: 'bob', createdAt: 2 });
    expect(await b.deleteTokens('bob', ctx)).toBe(2);
    expect(await a.findToken('h1')).toBeUndefined();
    expect(await a.findToken('h3')).toBeDefined();
  });

  it('activates exactly one key and tracks lastGrantExp from grants', async () => {
    const s = await newStore('/keys/');
    await s.addKey(keyRecord('k1'), ctx);
    await s.addKey(keyRecord('k2'), ctx);
    await expect(s.addKey(keyRecord('k1'), ctx)).rejects.toThrow();
    await Promise.all([s.activateKey('k1', 100, ctx), s.activateKey('k2', 100, ctx)]);
    const keys = await s.listKeys();
    expect(keys.filter((k) => k.state === 'active')).toHaveLength(1);
    await expect(s.activateKey('nope', 1, ctx)).rejects.toThrow(/unknown/);
    const g = grantRecord({ kid: 'k1', exp: now() + 500, claims: [] });
    expect(await s.issueGrant(g, now(), ctx)).toEqual({ ok: true });
    const k1 = (await s.listKeys()).find((k) => k.kid === 'k1');
    expect(k1?.lastGrantExp).toBe(g.exp);
    const active = (await s.listKeys()).find((k) => k.state === 'active')!.kid;
    const retired = active === 'k1' ? 'k2' : 'k1';
    // A retired key never becomes active again (a stale replica must not flip the cluster back).
    await s.activateKey(retired, 101, ctx);
    expect((await s.listKeys()).find((k) => k.state === 'active')?.kid).toBe(active);
    expect(await s.deleteKey(active, ctx)).toBe(false);
    expect(await s.deleteKey(retired, ctx)).toBe(true);
    expect(await s.deleteKey('k1', ctx)).toBe(false);
  });

  it('keeps one active key when two replicas start on an empty cluster, and tells every replica of key changes', async () => {
    const s1 = await newStore('/boot/');
    const s2 = await newStore('/boot/');
    let changes = 0;
    const stop = s2.watchKeys(() => changes++);
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all([s1.addKey(keyRecord('a', 'active'), ctx), s2.addKey(keyRecord('b', 'active'), ctx)]);
    const keys = await s1.listKeys();
    expect(keys.filter((k) => k.state === 'active')).toHaveLength(1);
    expect(keys.filter((k) => k.state === 'retired')).toHaveLength(1);
    await waitFor(() => changes > 0, 30_000, 'key change seen by the other replica');
    const before = changes;
    await s1.addKey(keyRecord('c'), ctx);
    await s1.activateKey('c', now(), ctx);
    await waitFor(() => changes > before, 30_000, 'activation seen by the other replica');
    stop();
  });

  it('lets exactly one of two replicas win each race for the same exclusive claim', async () => {
    for (let round = 0; round < 40; round++) {
      const resource = `rx/udp/${1000 + round}`;
      const claims = [{ driver: 'eth0', resource, mode: 'exclusive' as const }];
      const g1 = grantRecord({ claims });
      const g2 = grantRecord({ claims });
      const [r1, r2] = await Promise.all([a.issueGrant(g1, now(), ctx), b.issueGrant(g2, now(), ctx)]);
      const wins = [r1, r2].filter((r) => r.ok).length;
      expect(wins, `round ${round}`).toBe(1);
      const loser = r1.ok ? r2 : r1;
      expect(loser.ok === false && loser.conflicting.resource).toBe(resource);
    }
  });

  it('shares shared claims, refuses exclusive over shared, and frees claims on revocation or expiry', async () => {
    const shared = [{ driver: 'eth1', resource: 'rx/udp/9', mode: 'shared' as const }];
    const excl = [{ driver: 'eth1', resource: 'rx/udp/9', mode: 'exclusive' as const }];
    const s1 = grantRecord({ driver: 'eth1', claims: shared, exclusive: false });
    const s2 = grantRecord({ driver: 'eth1', claims: shared, exclusive: false });
    expect(await a.issueGrant(s1, now(), ctx)).toEqual({ ok: true });
    expect(await b.issueGrant(s2, now(), ctx)).toEqual({ ok: true });
    const e1 = grantRecord({ driver: 'eth1', claims: excl });
    expect((await a.issueGrant(e1, now(), ctx)).ok).toBe(false);
    const r1 = await a.revoke({ kind: 'jti', value: s1.jti, at: now(), until: now() + 600, reason: 't' }, ctx);
    const r2 = await b.revoke({ kind: 'jti', value: s2.jti, at: now(), until: now() + 600, reason: 't' }, ctx);
    expect(r2.seq).toBeGreaterThan(r1.seq);
    expect((await b.getGrant(s1.jti))?.revokedSeq).toBe(r1.seq);
    expect(await b.issueGrant(e1, now(), ctx)).toEqual({ ok: true });
    // Expired exclusive claims no longer conflict.
    const short = grantRecord({
      driver: 'eth2',
      exp: now() - 1,
      claims: [{ driver: 'eth2', resource: 'r', mode: 'exclusive' }],
    });
    expect(await a.issueGrant(short, now() - 10, ctx)).toEqual({ ok: true });
    const next = grantRecord({ driver: 'eth2', claims: [{ driver: 'eth2', resource: 'r', mode: 'exclusive' }] });
    expect(await b.issueGrant(next, now(), ctx)).toEqual({ ok: true });
  });

  it('revokes by subject and lists live grants newest first', async () => {
    const s = await newStore('/sub/');
    const t = now();
    const old = grantRecord({ sub: 'mallory', iat: t - 10, claims: [] });
    const newer = grantRecord({ sub: 'mallory', iat: t - 5, claims: [] });
    const other = grantRecord({ sub: 'trent', claims: [] });
    for (const g of [old, newer, other]) expect(await s.issueGrant(g, t, ctx)).toEqual({ ok: true });
    expect((await s.listGrants({ sub: 'mallory' })).map((g) => g.jti)).toEqual([newer.jti, old.jti]);
    const entry = await s.revoke({ kind: 'sub', value: 'mallory', at: t, until: t + 600, reason: 'left' }, ctx);
    expect(await s.listGrants({ sub: 'mallory', liveAt: t })).toEqual([]);
    expect((await s.getGrant(old.jti))?.revokedSeq).toBe(entry.seq);
    expect((await s.listGrants({ liveAt: t })).map((g) => g.jti)).toEqual([other.jti]);
    const list = await s.listRevocations(0);
    expect(list.head).toBe(entry.seq);
    expect(list.entries).toEqual([entry]);
    expect(await s.listRevocations(entry.seq)).toEqual({ head: entry.seq, entries: [] });
    // By key and by rule, through the grant index.
    const byKid = grantRecord({ sub: 'victor', kid: 'k9', claims: [] });
    const byRule = grantRecord({ sub: 'victor', rule: 'ntp', iat: t - 1, claims: [] });
    for (const g of [byKid, byRule]) expect(await s.issueGrant(g, t, ctx)).toEqual({ ok: true });
    const kidEntry = await s.revoke({ kind: 'kid', value: 'k9', at: t, until: t + 600, reason: '' }, ctx);
    const ruleEntry = await s.revoke({ kind: 'rule', value: 'ntp', at: t, until: t + 600, reason: '' }, ctx);
    expect((await s.getGrant(byKid.jti))?.revokedSeq).toBe(kidEntry.seq);
    expect((await s.getGrant(byRule.jti))?.revokedSeq).toBe(ruleEntry.seq);
    expect((await s.getGrant(other.jti))?.revokedSeq).toBeNull();
  });

  it("feeds every replica's watch with every revocation in order, across compaction", async () => {
    const s1 = await newStore('/w/');
    const s2 = await newStore('/w/');
    const seen1: RevocationEntry[] = [];
    const seen2: RevocationEntry[] = [];
    const stop1 = s1.watchRevocations(0, (e) => seen1.push(e));
    const first = await s1.revoke({ kind: 'rule', value: 'r0', at: now(), until: now() + 600, reason: 'x' }, ctx);
    await waitFor(() => seen1.length === 1, 30_000, 'first entry');
    // A watch from the past, then compaction under a live watch while revocations keep coming.
    const stop2 = s2.watchRevocations(0, (e) => seen2.push(e));
    const written = [first];
    for (let i = 1; i <= 30; i++) {
      written.push(await s2.revoke({ kind: 'rule', value: `r${i}`, at: now(), until: now() + 600, reason: 'x' }, ctx));
      if (i % 10 === 0) await s1.compact();
    }
    await waitFor(() => seen1.length >= written.length && seen2.length >= written.length, 30_000, 'all entries');
    expect(seen1.map((e) => e.seq)).toEqual(written.map((e) => e.seq));
    expect(seen2).toEqual(written);
    // A watch starting from a compacted revision re-lists instead of failing.
    const seen3: RevocationEntry[] = [];
    const stop3 = s2.watchRevocations(first.seq, (e) => seen3.push(e));
    await waitFor(() => seen3.length === written.length - 1, 30_000, 'watch from compacted revision');
    expect(seen3).toEqual(written.slice(1));
    stop1();
    stop2();
    stop3();
  });

  it('re-lists and re-watches when its watch starts at a compacted revision (etcd cancels it)', async () => {
    const s = await newStore('/compacted/');
    const first = await s.revoke({ kind: 'rule', value: 'c0', at: now(), until: now() + 600, reason: 'x' }, ctx);
    await s.compact();
    const errors: Error[] = [];
    const seen: RevocationEntry[] = [];
    let lists = 0;
    const { stop } = watchRevocationRecords(
      {
        client: s.etcd,
        prefix: s.keys.revocations(),
        // The first list claims an old revision: the watch then starts below the compaction point. Later
        // lists compact first and read after that, so their revision never exceeds what they read.
        list: async (after) => {
          const revision = lists++ === 0 ? 1 : await s.compact();
          const page = await s.listRevocations(after);
          return { entries: page.entries, revision };
        },
        decode: (kv) => {
          const value = JSON.parse(kv.value.toString()) as RevocationEntry;
          return { ...value, seq: Number(kv.create_revision) };
        },
      },
      0,
      (e) => seen.push(e),
      (e) => errors.push(e),
      { resyncMs: 60_000, retryMinMs: 10 },
    );
    await waitFor(() => errors.length > 0 && lists >= 2, 30_000, 'compaction error and re-list');
    // etcd cancels a watch below the compaction point (the etcd3 client reports it as a cancellation).
    expect(errors[0].message).toMatch(/cancel/i);
    const second = await s.revoke({ kind: 'rule', value: 'c1', at: now(), until: now() + 600, reason: 'x' }, ctx);
    await waitFor(() => seen.length === 2, 30_000, 'entries after the re-watch');
    expect(seen.map((e) => e.seq)).toEqual([first.seq, second.seq]);
    stop();
  });

  it('collects revocation records and grants that can no longer matter, and nothing else', async () => {
    const s = await newStore('/gc/');
    const t = now();
    const live = grantRecord({ claims: [] });
    const expired = grantRecord({ iat: t - 200_000, nbf: t - 200_000, exp: t - 100_000, claims: [] });
    for (const g of [live, expired]) expect(await s.issueGrant(g, t - 200_000, ctx)).toEqual({ ok: true });
    const keep = await s.revoke({ kind: 'sub', value: 'x', at: t, until: t + 600, reason: '' }, ctx);
    await s.revoke({ kind: 'sub', value: 'y', at: t - 10_000, until: t - 7200, reason: '' }, ctx);
    expect(await s.collectGarbage(t)).toEqual({ revocations: 1, grants: 1 });
    expect((await s.listRevocations(0)).entries).toEqual([keep]);
    expect(await s.getGrant(expired.jti)).toBeUndefined();
    const index = await s.etcd.getAll().prefix(`${s.keys.prefix}gidx/`).keys();
    expect(index.some((k) => k.endsWith(expired.jti))).toBe(false);
    expect(index.filter((k) => k.endsWith(live.jti))).toHaveLength(3);
    expect(await s.getGrant(live.jti)).toBeDefined();
    expect(await s.collectGarbage(t)).toEqual({ revocations: 0, grants: 0 });
    // Only the latest expiry per signing key is kept, and it still counts.
    const exps = await s.etcd.getAll().prefix(`${s.keys.prefix}keyexp/`).keys();
    expect(exps).toHaveLength(1);
    await s.addKey(keyRecord(live.kid, 'active'), ctx);
    expect((await s.listKeys()).find((k) => k.kid === live.kid)?.lastGrantExp).toBe(live.exp);
  });

  it('keeps writing through a leader election when the leader is killed', async () => {
    const s = await newStore('/leader/');
    const leader = await cluster.leader();
    await cluster.killMember(leader);
    try {
      // The first write may meet the election; the store fails it clearly and a retry succeeds.
      let entry: RevocationEntry | undefined;
      await waitFor(
        async () => {
          entry = await s
            .revoke({ kind: 'jti', value: 'after-leader', at: now(), until: now() + 600, reason: '' }, ctx)
            .catch((err: unknown) => {
              expect(err).toBeInstanceOf(StoreUnavailableError);
              return undefined;
            });
          return entry !== undefined;
        },
        60_000,
        'a write after the leader died',
      );
      expect((await s.listRevocations(0)).entries.map((e) => e.value)).toContain('after-leader');
      expect(await cluster.leader()).not.toBe(leader);
    } finally {
      cluster.startMember(leader);
      await cluster.waitHealthy(60_000);
    }
  }, 120_000);

  it('continues with one member killed, refuses clearly without quorum, and recovers', async () => {
    const s = await newStore('/q/');
    const seen: RevocationEntry[] = [];
    const errors: Error[] = [];
    const stop = s.watchRevocations(
      0,
      (e) => seen.push(e),
      (e) => errors.push(e),
    );
    const rev = (v: string) => s.revoke({ kind: 'jti', value: v, at: now(), until: now() + 600, reason: 'q' }, ctx);
    await rev('before');
    await cluster.killMember(0);
    await rev('one-down');
    expect((await s.issueGrant(grantRecord({ claims: [] }), now(), ctx)).ok).toBe(true);
    await cluster.killAll();
    const err = await rev('no-quorum').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).code).toBe('EXO_ERR_STORE_UNAVAILABLE');
    await expect(s.put('drivers', { id: 'd', attributes: {} }, ctx)).rejects.toMatchObject({
      code: 'EXO_ERR_STORE_UNAVAILABLE',
    });
    await expect(s.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await cluster.startAll();
    await waitFor(
      async () =>
        s.ping().then(
          () => true,
          () => false,
        ),
      60_000,
      'ping after restart',
    );
    await rev('after');
    await waitFor(() => seen.some((e) => e.value === 'after'), 60_000, 'watch after restart');
    expect(seen.map((e) => e.value)).toEqual(['before', 'one-down', 'after']);
    stop();
  }, 180_000);
});
