import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyManager, loadKek, openPrivateKey, sealPrivateKey } from '../src/keys.ts';
import { SqliteStore } from '../src/store/sqlite.ts';

const ctx = { actor: 'test' };
let dir: string;
let store: SqliteStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'exonet-keys-'));
  store = new SqliteStore({ path: join(dir, 'k.db') });
  await store.open();
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sealing private keys at rest', () => {
  const kek = new Uint8Array(32).fill(9);
  const seed = new Uint8Array(32).fill(5);

  it('round-trips, and refuses another KEK, another kid or a tampered blob', () => {
    const sealed = sealPrivateKey(seed, 'k1', kek);
    expect(sealed).not.toContain(Buffer.from(seed).toString('base64url'));
    expect(openPrivateKey(sealed, 'k1', kek)).toEqual(seed);
    expect(() => openPrivateKey(sealed, 'k1', new Uint8Array(32).fill(8))).toThrow(
      /EXO_ERR_KEY_SEALED|cannot be opened/,
    );
    expect(() => openPrivateKey(sealed, 'k2', kek)).toThrow(/cannot be opened/);
    const tampered = `${sealed.slice(0, -2)}${sealed.endsWith('A') ? 'BA' : 'AA'}`;
    expect(() => openPrivateKey(tampered, 'k1', kek)).toThrow();
    expect(() => openPrivateKey('v0.x.y', 'k1', kek)).toThrow(/format/);
  });

  it('creates the KEK file with mode 0600 and reads it back; EXONET_KEK wins', () => {
    const file = join(dir, 'sub', 'kek');
    const a = loadKek(file, {});
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadKek(file, {})).toEqual(a);
    const env = { EXONET_KEK: Buffer.from(new Uint8Array(32).fill(1)).toString('base64url') };
    expect(loadKek(file, env)).toEqual(new Uint8Array(32).fill(1));
    expect(() => loadKek(file, { EXONET_KEK: 'short' })).toThrow(/32 bytes/);
  });
});

describe('KeyManager rotation', () => {
  it('publishes a new key before it signs, then retires the old one until its grants expired', async () => {
    let now = 1_800_000_000;
    const keys = new KeyManager(store, new Uint8Array(32).fill(3), {
      publishDelaySec: 60,
      toleranceSec: 5,
      now: () => now,
    });
    await keys.init(ctx);
    const first = keys.activeKey().kid;
    keys.noteGrant(first, now + 300);
    const next = await keys.rotate(ctx);
    // Published, not yet used.
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual(expect.arrayContaining([first, next]));
    expect(keys.activeKey().kid).toBe(first);
    now += 60;
    await keys.tick(ctx);
    expect(keys.activeKey().kid).toBe(next);
    // The retired key stays published while a grant it signed may be valid.
    expect(keys.jwks().keys.map((k) => k.kid)).toContain(first);
    now += 300;
    await keys.tick(ctx);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([next]);
    expect((await store.listKeys()).map((k) => k.kid)).toEqual([next]);
  });

  it('reopens keys after a restart with the same KEK and refuses another KEK', async () => {
    const kek = new Uint8Array(32).fill(4);
    const a = new KeyManager(store, kek);
    await a.init(ctx);
    const kid = a.activeKey().kid;
    const b = new KeyManager(store, kek);
    await b.init(ctx);
    expect(b.activeKey().kid).toBe(kid);
    expect(b.activeKey().publicKey).toEqual(a.activeKey().publicKey);
    const c = new KeyManager(store, new Uint8Array(32).fill(5));
    await c.init(ctx);
    expect(() => c.activeKey()).toThrow(/EXO_ERR_KEY_SEALED|cannot be opened/);
  });
});
