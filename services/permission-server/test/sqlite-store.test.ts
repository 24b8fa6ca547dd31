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

  it('rejects writes after close', async () => {
    const s = new SqliteStore({ path: join(dir, 'closed.db') });
    await s.open();
    await s.close();
    await expect(s.addToken({ hash: 'h', principal: 'p', createdAt: 0 }, { actor: 't' })).rejects.toThrow(
      /closed|not open/,
    );
  });
});
