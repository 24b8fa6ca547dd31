/**
 * The behaviour every Store implementation must show. Each store's test file calls
 * `storeContract(name, factory)`; the factory returns a fresh, opened-on-demand, empty store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GrantRecord, RevocationEntry, Store } from '../src/store/store.ts';

const ctx = { actor: 'test', requestId: 'req-1' };
export const T = 1_800_000_000;

export function grantRecord(overrides: Partial<GrantRecord> = {}): GrantRecord {
  return {
    jti: 'g1',
    sub: 'alice',
    driver: 'drv1',
    dir: 'rx',
    layer: 'task',
    rule: 'dns',
    kid: 'k1',
    cnfJkt: 'x'.repeat(43),
    holderJwk: { kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43) },
    requestedFilter: 'udp',
    port: 53,
    bpf: 'BgAAAAAABAA',
    exclusive: true,
    claims: [{ driver: 'drv1', resource: 'rx/udp/53', mode: 'exclusive' }],
    iat: T,
    nbf: T,
    exp: T + 60,
    jws: 'a.b.c',
    renewedFrom: null,
    revokedSeq: null,
    ...overrides,
  };
}

export function storeContract(name: string, factory: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await factory();
      await store.open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('pings and opens idempotently', async () => {
      await store.open();
      await store.ping();
    });

    it('creates, reads, updates with compare-and-set, and deletes policy objects', async () => {
      const group = { id: 'ops', capabilities: ['bind-privileged'], description: '' };
      const created = await store.put('groups', group, ctx, 0);
      expect(created).toMatchObject({ ok: true, value: { id: 'ops', version: expect.any(Number) } });
      if (!created.ok) return;
      expect(await store.put('groups', group, ctx, 0)).toEqual({ ok: false, reason: 'version' });
      const updated = await store.put('groups', { ...group, description: 'x' }, ctx, created.value.version);
      expect(updated.ok).toBe(true);
      expect(await store.put('groups', group, ctx, created.value.version)).toEqual({ ok: false, reason: 'version' });
      expect(await store.get('groups', 'ops')).toMatchObject({ description: 'x' });
      expect((await store.list('groups')).map((g) => g.id)).toEqual(['ops']);
      expect(await store.delete('groups', 'ops', ctx)).toBe(true);
      expect(await store.delete('groups', 'ops', ctx)).toBe(false);
      expect(await store.get('groups', 'ops')).toBeUndefined();
    });

    it('keeps tokens by hash', async () => {
      await store.addToken({ hash: 'h1', principal: 'alice', createdAt: T }, ctx);
      expect(await store.findToken('h1')).toEqual({ hash: 'h1', principal: 'alice', createdAt: T });
      expect(await store.deleteTokens('alice', ctx)).toBe(1);
      expect(await store.findToken('h1')).toBeUndefined();
    });

    it('rotates keys: one active, the previous retired', async () => {
      const key = (kid: string) => ({
        kid,
        publicJwk: { kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43), kid } as const,
        sealedPrivateKey: 'sealed',
        state: 'next' as const,
        createdAt: T,
        activatedAt: null,
        retiredAt: null,
        lastGrantExp: 0,
      });
      await store.addKey(key('k1'), ctx);
      await store.activateKey('k1', T, ctx);
      await store.addKey(key('k2'), ctx);
      await store.activateKey('k2', T + 1, ctx);
      const keys = await store.listKeys();
      expect(keys.find((k) => k.kid === 'k1')).toMatchObject({ state: 'retired', retiredAt: T + 1 });
      expect(keys.find((k) => k.kid === 'k2')).toMatchObject({ state: 'active', activatedAt: T + 1 });
      await expect(store.activateKey('nope', T, ctx)).rejects.toThrow();
      // A retired key never becomes active again (a stale rotation must not revive it).
      await store.activateKey('k1', T + 2, ctx);
      const after = await store.listKeys();
      expect(after.find((k) => k.kid === 'k1')?.state).toBe('retired');
      expect(after.find((k) => k.kid === 'k2')?.state).toBe('active');
      expect(await store.deleteKey('k2', ctx)).toBe(false);
      expect(await store.deleteKey('k1', ctx)).toBe(true);
    });

    it('issues grants with atomic exclusive claims', async () => {
      expect(await store.issueGrant(grantRecord(), T, ctx)).toEqual({ ok: true });
      // A concurrent second exclusive claim on the same resource: exactly one of the two wins.
      const [a, b] = await Promise.all([
        store.issueGrant(grantRecord({ jti: 'g2' }), T, ctx),
        store.issueGrant(
          grantRecord({ jti: 'g3', claims: [{ driver: 'drv1', resource: 'rx/udp/53', mode: 'shared' }] }),
          T,
          ctx,
        ),
      ]);
      expect(a).toMatchObject({ ok: false, reason: 'conflict', conflicting: { jti: 'g1' } });
      expect(b).toMatchObject({ ok: false, reason: 'conflict' });
      // Another driver or resource is free.
      expect(
        await store.issueGrant(
          grantRecord({
            jti: 'g4',
            driver: 'drv2',
            claims: [{ driver: 'drv2', resource: 'rx/udp/53', mode: 'exclusive' }],
          }),
          T,
          ctx,
        ),
      ).toEqual({ ok: true });
      // After expiry the resource is free again.
      expect(
        await store.issueGrant(grantRecord({ jti: 'g5', iat: T + 60, nbf: T + 60, exp: T + 120 }), T + 60, ctx),
      ).toEqual({ ok: true });
      expect(await store.getGrant('g1')).toMatchObject({ jti: 'g1', revokedSeq: null });
      expect((await store.listGrants({ sub: 'alice' })).map((g) => g.jti).sort()).toEqual(['g1', 'g4', 'g5']);
      expect((await store.listGrants({ sub: 'alice', liveAt: T + 61 })).map((g) => g.jti)).toEqual(['g5']);
    });

    it('a renewal takes over the claims of the grant it renews', async () => {
      expect(await store.issueGrant(grantRecord(), T, ctx)).toEqual({ ok: true });
      expect(await store.issueGrant(grantRecord({ jti: 'g1r', renewedFrom: 'g1' }), T + 30, ctx)).toEqual({ ok: true });
      expect(await store.issueGrant(grantRecord({ jti: 'other' }), T + 30, ctx)).toMatchObject({ ok: false });
    });

    it('shared claims coexist; an exclusive one then conflicts', async () => {
      const shared = (jti: string) =>
        grantRecord({ jti, exclusive: false, claims: [{ driver: 'drv1', resource: 'rx/udp/53', mode: 'shared' }] });
      expect(await store.issueGrant(shared('s1'), T, ctx)).toEqual({ ok: true });
      expect(await store.issueGrant(shared('s2'), T, ctx)).toEqual({ ok: true });
      expect(await store.issueGrant(grantRecord({ jti: 'x1' }), T, ctx)).toMatchObject({ ok: false });
    });

    it('revokes with increasing sequence numbers, releases claims, and lists after N', async () => {
      await store.issueGrant(grantRecord(), T, ctx);
      const r1 = await store.revoke({ kind: 'jti', value: 'g1', at: T + 1, until: T + 60, reason: 'test' }, ctx);
      const r2 = await store.revoke({ kind: 'sub', value: 'bob', at: T + 2, until: T + 300, reason: 'left' }, ctx);
      expect(r2.seq).toBeGreaterThan(r1.seq);
      expect(await store.getGrant('g1')).toMatchObject({ revokedSeq: r1.seq });
      expect(await store.issueGrant(grantRecord({ jti: 'g2' }), T + 2, ctx)).toEqual({ ok: true });
      const all = await store.listRevocations(0);
      expect(all.head).toBe(r2.seq);
      expect(all.entries.map((e) => e.seq)).toEqual([r1.seq, r2.seq]);
      expect((await store.listRevocations(r1.seq)).entries).toMatchObject([{ kind: 'sub', value: 'bob' }]);
      expect((await store.listRevocations(r2.seq)).entries).toEqual([]);
    });

    it('revokes by subject only grants issued up to the revocation', async () => {
      await store.issueGrant(grantRecord({ jti: 'old', claims: [] }), T, ctx);
      await store.issueGrant(
        grantRecord({ jti: 'new', iat: T + 10, nbf: T + 10, exp: T + 70, claims: [] }),
        T + 10,
        ctx,
      );
      await store.revoke({ kind: 'sub', value: 'alice', at: T + 5, until: T + 65, reason: '' }, ctx);
      expect((await store.getGrant('old'))?.revokedSeq).not.toBeNull();
      expect((await store.getGrant('new'))?.revokedSeq).toBeNull();
    });

    it('watches revocations from a sequence number, backlog first, then live', async () => {
      const first = await store.revoke({ kind: 'kid', value: 'k0', at: T, until: T + 1, reason: '' }, ctx);
      const seen: RevocationEntry[] = [];
      const stop = store.watchRevocations(0, (e) => seen.push(e));
      const second = await store.revoke({ kind: 'rule', value: 'dns', at: T, until: T + 1, reason: '' }, ctx);
      await new Promise((r) => setImmediate(r));
      expect(seen.map((e) => e.seq)).toEqual([first.seq, second.seq]);
      stop();
      await store.revoke({ kind: 'rule', value: 'ntp', at: T, until: T + 1, reason: '' }, ctx);
      await new Promise((r) => setImmediate(r));
      expect(seen).toHaveLength(2);
    });

    it('audits every change with actor and request id', async () => {
      await store.put('rules', ruleFixture(), ctx);
      await store.issueGrant(grantRecord(), T, ctx);
      await store.revoke({ kind: 'jti', value: 'g1', at: T, until: T + 60, reason: 'r' }, ctx);
      const audit = await store.listAudit(0, 100);
      expect(audit.map((a) => a.action)).toEqual(['rules.put', 'grant.issue', 'revocation.create']);
      expect(audit[0]).toMatchObject({ actor: 'test', requestId: 'req-1', subject: 'dns' });
      expect((await store.listAudit(audit[1]!.seq, 100)).map((a) => a.action)).toEqual(['revocation.create']);
    });
  });
}

export function ruleFixture() {
  return {
    id: 'dns',
    who: { users: [], groups: ['dns'], capabilities: [] },
    dir: 'rx' as const,
    layer: 'task' as const,
    filter: 'udp and dst port {port}',
    ports: [{ from: 53, to: 53 }],
    drivers: [],
    maxLifetimeSec: 300,
    sharing: 'either' as const,
    description: '',
  };
}
