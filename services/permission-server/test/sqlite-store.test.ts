import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/store/sqlite.ts';
import { grantRecord, storeContract, T } from './store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-sqlite-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

storeContract('sqlite', async () => new SqliteStore({ path: join(dir, `s${n++}.db`) }));

describe('SqliteStore specifics', () => {
  it('keeps data across reopen (migrations applied once) and runs in WAL mode', async () => {
    const path = join(dir, 'reopen.db');
    const a = new SqliteStore({ path });
    await a.open();
    await a.issueGrant(grantRecord(), 1_800_000_000, { actor: 't' });
    await a.close();
    const b = new SqliteStore({ path });
    await b.open();
    expect(await b.getGrant('g1')).toMatchObject({ jti: 'g1' });
    await b.close();
    await expect(b.ping()).rejects.toThrow(/EXO_ERR_STORE_CLOSED/);
  });

  it('acknowledges a committed batch from inside the next write, before the event loop turns', async () => {
    const path = join(dir, 'poll.db');
    const s = new SqliteStore({ path });
    await s.open();
    const ctx = { actor: 't' };
    const claim = (i: number) => [{ driver: 'drv1', resource: `rx/udp/${i}`, mode: 'exclusive' as const }];
    let firstDone = false;
    const first = s.issueGrant(grantRecord({ jti: 'p1', claims: claim(1) }), T, ctx).then((r) => {
      firstDone = true;
      return r;
    });
    // The first batch leaves for the writer thread at the next turn of the loop.
    await new Promise((r) => setImmediate(r));
    // Hold the event loop while the writer commits and posts its outcome: the port's 'message' cannot run.
    const until = Date.now() + 1000;
    while (Date.now() < until) {}
    const second = s.issueGrant(grantRecord({ jti: 'p2', claims: claim(2) }), T, ctx);
    // Microtasks only: the outcome was taken by the second write, not by a port callback.
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(firstDone).toBe(true);
    expect(await first).toMatchObject({ ok: true });
    expect(await second).toMatchObject({ ok: true });
    await s.close();
    const again = new SqliteStore({ path });
    await again.open();
    expect(await again.getGrant('p1')).toMatchObject({ jti: 'p1' });
    expect(await again.getGrant('p2')).toMatchObject({ jti: 'p2' });
    await again.close();
  });

  it('collects revocation records and grants that can no longer matter, and nothing else', async () => {
    // Collected by hand here (the periodic round is an hour away).
    const s = new SqliteStore({ path: join(dir, 'gc.db'), grantRetentionSec: 3600, gcIntervalMs: 3_600_000 });
    await s.open();
    const ctx = { actor: 't' };
    const t = Math.floor(Date.now() / 1000);
    // Time-ordered ids as the server makes them: issued long ago, recently, and an old one still valid.
    const id = (sec: number, tail: string) => `g_${(sec * 1000).toString(16).padStart(11, '0')}${tail}`;
    const expired = grantRecord({
      jti: id(t - 30 * 86_400, 'a'),
      iat: t - 30 * 86_400,
      exp: t - 30 * 86_400 + 300,
      claims: [],
    });
    const recent = grantRecord({ jti: id(t - 1800, 'b'), iat: t - 1800, exp: t - 1500, claims: [] });
    const live = grantRecord({ jti: id(t - 60, 'c'), iat: t - 60, exp: t + 240, claims: [] });
    for (const g of [expired, recent, live]) expect(await s.issueGrant(g, g.iat, ctx)).toMatchObject({ ok: true });
    const keep = await s.revoke({ kind: 'sub', value: 'x', at: t, until: t + 600, reason: '' }, ctx);
    const last = await s.revoke({ kind: 'sub', value: 'y', at: t - 10_000, until: t - 7200, reason: '' }, ctx);
    expect(await s.collectGarbage(t)).toEqual({ revocations: 1, grants: 1 });
    expect((await s.listRevocations(0)).entries.map((e) => e.seq)).toEqual([keep.seq]);
    // The newest record is gone, but the head never moves back: drivers refuse a list whose sequence did.
    expect((await s.listRevocations(0)).head).toBe(last.seq);
    expect(await s.getGrant(expired.jti)).toBeUndefined();
    // Expired half an hour ago, within the hour of retention: kept, as is the live one.
    expect(await s.getGrant(recent.jti)).toBeDefined();
    expect(await s.getGrant(live.jti)).toBeDefined();
    expect(await s.collectGarbage(t)).toEqual({ revocations: 0, grants: 0 });
    // An hour later the recent one goes too; the audit log still has every issue.
    expect(await s.collectGarbage(t + 3600)).toEqual({ revocations: 0, grants: 1 });
    expect(await s.getGrant(recent.jti)).toBeUndefined();
    const audit = await s.listAudit(0, 100);
    expect(audit.filter((a) => a.action === 'grant.issue').length).toBe(3);
    // With every record collected, the head stays, and the next revocation goes on from it.
    expect(await s.collectGarbage(t + 86_400)).toMatchObject({ revocations: 1 });
    expect(await s.listRevocations(0)).toEqual({ head: last.seq, entries: [] });
    const next = await s.revoke({ kind: 'sub', value: 'z', at: t, until: t + 600, reason: '' }, ctx);
    expect(next.seq).toBeGreaterThan(last.seq);
    await s.close();
  });

  it('rejects writes after close', async () => {
    const s = new SqliteStore({ path: join(dir, 'closed.db') });
    await s.open();
    await s.close();
    await expect(s.addToken({ hash: 'h', principal: 'p', createdAt: 0 }, { actor: 't' })).rejects.toThrow(
      /closed|not open/,
    );
  });
});
