import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/store/sqlite.ts';
import { grantRecord, storeContract } from './store-contract.ts';

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

  it('rejects writes after close', async () => {
    const s = new SqliteStore({ path: join(dir, 'closed.db') });
    await s.open();
    await s.close();
    await expect(s.addToken({ hash: 'h', principal: 'p', createdAt: 0 }, { actor: 't' })).rejects.toThrow(
      /closed|not open/,
    );
  });
});
