/** SQLite migrations keep the data: a version-2 database with live claims opens as version 3 with them. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { grantId } from '../src/grants.ts';
import { migrations } from '../src/store/migrations.ts';
import { openDatabase } from '../src/store/sqlite-ops.ts';

describe('SQLite migrations', () => {
  it('3: claims lose their primary key but keep every row, and conflict lookups use claims_live', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exonet-mig-'));
    try {
      const path = join(dir, 'ps.db');
      const old = new Database(path);
      old.pragma('journal_mode = WAL');
      old.exec(migrations[0]!);
      old.exec(migrations[1]!);
      old.pragma('user_version = 2');
      old.prepare("INSERT INTO claims VALUES ('drv1', 'rx/port/53', 'g_a', 'exclusive', 999)").run();
      old.prepare("INSERT INTO claims VALUES ('drv1', 'rx/port/53', 'g_b', 'shared', 998)").run();
      old.close();

      const db = openDatabase(path);
      expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
      expect(db.prepare('SELECT jti, mode, exp FROM claims ORDER BY jti').all()).toEqual([
        { jti: 'g_a', mode: 'exclusive', exp: 999 },
        { jti: 'g_b', mode: 'shared', exp: 998 },
      ]);
      const plan = db
        .prepare(
          "EXPLAIN QUERY PLAN SELECT jti FROM claims WHERE driver = ? AND resource = ? AND mode IN ('exclusive', 'shared') AND exp > ? AND jti != ? LIMIT 1",
        )
        .all('drv1', 'rx/port/53', 0, '') as { detail: string }[];
      expect(plan.map((p) => p.detail).join(' ')).toContain('claims_live');
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('new databases use 2 KiB pages; existing ones keep theirs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exonet-mig-'));
    try {
      const fresh = openDatabase(join(dir, 'new.db'));
      expect(fresh.pragma('page_size', { simple: true })).toBe(2048);
      fresh.close();
      const old = new Database(join(dir, 'old.db'));
      old.pragma('journal_mode = WAL');
      old.exec('CREATE TABLE t (a)');
      old.close();
      const reopened = openDatabase(join(dir, 'old.db'));
      expect(reopened.pragma('page_size', { simple: true })).toBe(4096);
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('grant ids', () => {
  it('sort by issue time and stay unique', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => grantId(1_700_000_000_000 + Math.floor(i / 10)));
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 10; i < ids.length; i += 10) expect(ids[i - 1]! < ids[i]!).toBe(true);
    expect(ids[0]).toMatch(/^g_[0-9a-f]{11}[A-Za-z0-9_-]{22}$/);
  });
});
