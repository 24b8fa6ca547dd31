/**
 * Bearer-token lookups are cached (token hash -> token record) in the policy cache. A cached token must never
 * outlive its deletion, its principal's deletion or disabling, and a rotation (delete all, issue new) must
 * switch at once from the old token to the new one. A token deleted behind the server's back (another server on
 * a shared store) stops working within the cache's refresh bound.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hashToken } from '../src/auth.ts';
import { PolicyCache } from '../src/policy/cache.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { startTestServer, type TestServer } from './harness.ts';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const whoami = (server: TestServer, token: string) => server.call('GET', '/v1/grants', undefined, token);

describe('token cache', () => {
  it('a deleted token is refused at once, though it was just used (cached)', async () => {
    t = await startTestServer();
    const token = await t.principal('carol');
    expect((await whoami(t, token)).status).toBe(200);
    expect((await whoami(t, token)).status).toBe(200);
    expect((await t.call('DELETE', '/v1/principals/carol/tokens')).json).toEqual({ deleted: 1 });
    const refused = await whoami(t, token);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('EXO_ERR_AUTH_INVALID');
  });

  it('rotation: after delete-all and a new token, only the new token works', async () => {
    t = await startTestServer();
    const old = await t.principal('dave');
    expect((await whoami(t, old)).status).toBe(200);
    await t.call('DELETE', '/v1/principals/dave/tokens');
    const fresh = (await t.call('POST', '/v1/principals/dave/tokens')).json.token as string;
    expect((await whoami(t, fresh)).status).toBe(200);
    expect((await whoami(t, old)).status).toBe(401);
  });

  it('disabling or deleting the principal refuses its cached token', async () => {
    t = await startTestServer();
    const token = await t.principal('erin');
    expect((await whoami(t, token)).status).toBe(200);
    const current = (await t.call('GET', '/v1/principals/erin')).json;
    const { version: _v, ...body } = current;
    expect((await t.call('PUT', '/v1/principals/erin', { ...body, disabled: true })).status).toBe(200);
    expect((await whoami(t, token)).status).toBe(401);

    const other = await t.principal('frank');
    expect((await whoami(t, other)).status).toBe(200);
    expect((await t.call('DELETE', '/v1/principals/frank')).status).toBe(204);
    expect((await whoami(t, other)).status).toBe(401);
  });

  it('a token deleted directly in the store (another server) stops working within maxAgeMs', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    await store.open();
    try {
      let now = 1_000_000;
      const realNow = Date.now;
      Date.now = () => now;
      try {
        const cache = new PolicyCache(store, 1000);
        const hash = hashToken('exo_token');
        await store.addToken({ hash, principal: 'p', createdAt: 0 }, { actor: 'test' });
        expect((await cache.token(hash))?.principal).toBe('p');
        await store.deleteTokens('p', { actor: 'test' });
        // Within the bound the cached record may still answer (that is the documented staleness)...
        now += 999;
        expect((await cache.token(hash))?.principal).toBe('p');
        // ...and not after it.
        now += 1;
        expect(await cache.token(hash)).toBeUndefined();
        // Unknown tokens are never cached: a token added later is found at once.
        const later = hashToken('exo_later');
        expect(await cache.token(later)).toBeUndefined();
        await store.addToken({ hash: later, principal: 'p', createdAt: 0 }, { actor: 'test' });
        expect((await cache.token(later))?.principal).toBe('p');
      } finally {
        Date.now = realNow;
      }
    } finally {
      await store.close();
    }
  });
});
