/** Every route with its success and each of its errors, through inject(). */
import {
  bpfProgramVerifier,
  createChallenge,
  generateHolderKey,
  publicJwk,
  signChallenge,
  verifyGrant,
  verifyHolderProof,
  verifyRevocationList,
} from '@exonet/grant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holder, holderKey, standardPolicy, startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
let alice: string;
let bob: string;
const grantBody = (o: Record<string, unknown> = {}) => ({
  driver: 'drv1',
  dir: 'rx',
  filter: 'udp',
  holder,
  port: 5353,
  ...o,
});

beforeAll(async () => {
  t = await startTestServer();
  await standardPolicy(t);
  alice = await t.principal('alice', { groups: ['users', 'dns'] });
  bob = await t.principal('bob', { groups: ['users'] });
});
afterAll(async () => {
  await t.close();
});

describe('POST /v1/grants', () => {
  it('201: a grant for the rule AND the requested filter, verifiable by a driver and bound to the holder', async () => {
    const r = await t.call('POST', '/v1/grants', grantBody({ ttl: 60 }), alice);
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ rule: 'high-udp', exclusive: false, driver: 'drv1' });
    const jwks = (await t.call('GET', '/.well-known/jwks.json', undefined, null)).json;
    const v = verifyGrant(r.json.grant, {
      jwks,
      audience: 'drv1',
      verifyProgram: bpfProgramVerifier,
      maxLifetimeSec: 300,
    });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.claims).toMatchObject({
      sub: 'alice',
      aud: 'drv1',
      dir: 'rx',
      layer: 'task',
      excl: false,
      rule: 'high-udp',
      jti: r.json.id,
    });
    expect(v.claims.exp - v.claims.nbf).toBe(60);
    expect(v.claims.bpf).toBe(r.json.program);
    const challenge = createChallenge();
    expect(verifyHolderProof(challenge, signChallenge(challenge, holderKey), v.claims.cnf.jkt, holder).ok).toBe(true);
    expect(r.headers['x-request-id']).toBeTruthy();
  });

  it('201: a requested program instead of an expression', async () => {
    const accept = Buffer.from([6, 0, 0, 0, 0xff, 0xff, 0, 0]).toString('base64url');
    const r = await t.call(
      'POST',
      '/v1/grants',
      { ...grantBody({ port: 6000 }), filter: undefined, program: accept },
      alice,
    );
    expect(r.status).toBe(201);
  });

  it.each([
    ['no filter and no program', { filter: undefined }],
    ['both filter and program', { program: 'BgAAAAAABAA' }],
    ['unknown member', { colour: 'blue' }],
    ['bad direction', { dir: 'up' }],
    ['port out of range', { port: 70000 }],
    ['holder not Ed25519', { holder: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43) } }],
  ])('400 schema: %s', async (_n, o) => {
    const r = await t.call('POST', '/v1/grants', grantBody(o), alice);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('EXO_ERR_HTTP_VALIDATION');
  });

  it('400: a small-order holder key', async () => {
    const identity = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.from(`01${'00'.repeat(31)}`, 'hex').toString('base64url'),
    };
    const r = await t.call('POST', '/v1/grants', grantBody({ holder: identity }), alice);
    expect(r).toMatchObject({ status: 400, json: { error: { code: 'EXO_ERR_GRANT_HOLDER_KEY' } } });
  });

  it('400: a filter that does not compile, and a program the verifier rejects', async () => {
    const r1 = await t.call('POST', '/v1/grants', grantBody({ filter: 'udp and and' }), alice);
    expect(r1).toMatchObject({ status: 400, json: { error: { code: 'EXO_ERR_GRANT_FILTER_INVALID' } } });
    const noRet = Buffer.from([0x28, 0, 0, 0, 12, 0, 0, 0]).toString('base64url');
    const r2 = await t.call('POST', '/v1/grants', { ...grantBody(), filter: undefined, program: noRet }, alice);
    expect(r2).toMatchObject({ status: 400, json: { error: { code: 'EXO_ERR_GRANT_FILTER_INVALID' } } });
  });

  it('400: an unknown driver', async () => {
    const r = await t.call('POST', '/v1/grants', grantBody({ driver: 'nope' }), alice);
    expect(r).toMatchObject({ status: 400, json: { error: { code: 'EXO_ERR_GRANT_DRIVER_UNKNOWN' } } });
  });

  it('401: no token, a malformed token, an unknown token', async () => {
    expect((await t.call('POST', '/v1/grants', grantBody(), null)).json.error.code).toBe('EXO_ERR_AUTH_MISSING');
    expect((await t.call('POST', '/v1/grants', grantBody(), 'nonsense')).status).toBe(401);
    const r = await t.call('POST', '/v1/grants', grantBody(), `exo_${'A'.repeat(43)}`);
    expect(r).toMatchObject({ status: 401, json: { error: { code: 'EXO_ERR_AUTH_INVALID' } } });
  });

  it('403: the policy denies, with the reason (privileged port without the capability)', async () => {
    const r = await t.call('POST', '/v1/grants', grantBody({ port: 53 }), bob);
    expect(r.status).toBe(403);
    expect(r.json.error).toMatchObject({ code: 'EXO_ERR_POLICY_DENIED' });
    expect(r.json.error.message).toMatch(/bind-privileged/);
  });

  it('409: a second exclusive grant for udp port 53 on the same driver, until the first is revoked', async () => {
    const first = await t.call('POST', '/v1/grants', grantBody({ port: 53, exclusive: true }), alice);
    expect(first.status).toBe(201);
    const second = await t.call('POST', '/v1/grants', grantBody({ port: 53, exclusive: true }), alice);
    expect(second).toMatchObject({ status: 409, json: { error: { code: 'EXO_ERR_GRANT_CONFLICT' } } });
    // A shared request for the same port conflicts too; another driver is free.
    expect((await t.call('POST', '/v1/grants', grantBody({ port: 53, exclusive: false }), alice)).status).toBe(409);
    expect(
      (await t.call('POST', '/v1/grants', grantBody({ port: 53, exclusive: true, driver: 'drv2' }), alice)).status,
    ).toBe(201);
    expect((await t.call('POST', '/v1/revocations', { kind: 'jti', value: first.json.id })).status).toBe(201);
    expect((await t.call('POST', '/v1/grants', grantBody({ port: 53, exclusive: true }), alice)).status).toBe(201);
  });
});

describe('POST /v1/grants/{id}/renew and GET /v1/grants/{id}', () => {
  it('201: a fresh grant for the same filter and holder', async () => {
    const g = await t.call('POST', '/v1/grants', grantBody({ port: 7000, exclusive: true }), alice);
    const r = await t.call('POST', `/v1/grants/${g.json.id}/renew`, { ttl: 30 }, alice);
    expect(r.status).toBe(201);
    expect(r.json.id).not.toBe(g.json.id);
    expect(r.json.program).toBe(g.json.program);
    expect(r.json.exclusive).toBe(true);
    const rec = await t.call('GET', `/v1/grants/${r.json.id}`, undefined, alice);
    expect(rec.json).toMatchObject({ renewedFrom: g.json.id, sub: 'alice' });
  });

  it('404 for another principal, an unknown id; 409 once revoked; 401 without token', async () => {
    const g = await t.call('POST', '/v1/grants', grantBody({ port: 7001 }), alice);
    expect((await t.call('POST', `/v1/grants/${g.json.id}/renew`, {}, bob)).status).toBe(404);
    expect((await t.call('GET', `/v1/grants/${g.json.id}`, undefined, bob)).status).toBe(404);
    expect((await t.call('GET', `/v1/grants/${g.json.id}`)).status).toBe(200);
    expect((await t.call('POST', '/v1/grants/g_none/renew', {}, alice)).json.error.code).toBe(
      'EXO_ERR_GRANT_NOT_FOUND',
    );
    expect((await t.call('POST', `/v1/grants/${g.json.id}/renew`, {}, null)).status).toBe(401);
    await t.call('POST', '/v1/revocations', { kind: 'jti', value: g.json.id });
    expect((await t.call('POST', `/v1/grants/${g.json.id}/renew`, {}, alice)).json.error.code).toBe(
      'EXO_ERR_GRANT_NOT_RENEWABLE',
    );
  });

  it('GET /v1/grants: own grants for a principal, any for an admin; 403 for another principal; 400 on a bad query', async () => {
    const own = await t.call('GET', '/v1/grants?live=true&limit=5', undefined, alice);
    expect(own.status).toBe(200);
    expect(own.json.items.length).toBeGreaterThan(0);
    expect(own.json.items.every((g: { sub: string }) => g.sub === 'alice')).toBe(true);
    expect((await t.call('GET', '/v1/grants?sub=alice')).json.items.length).toBeGreaterThan(0);
    expect((await t.call('GET', '/v1/grants?sub=alice', undefined, bob)).status).toBe(403);
    expect((await t.call('GET', '/v1/grants?limit=0', undefined, alice)).status).toBe(400);
    expect((await t.call('GET', '/v1/grants', undefined, null)).status).toBe(401);
  });

  it('403 when the policy no longer allows it', async () => {
    const carol = await t.principal('carol', { groups: ['users'] });
    const g = await t.call('POST', '/v1/grants', grantBody({ port: 7002 }), carol);
    await t.call('PUT', '/v1/principals/carol', { id: 'carol', uid: 1000, groups: [] });
    await t.server.context.policy.invalidate();
    expect((await t.call('POST', `/v1/grants/${g.json.id}/renew`, {}, carol)).status).toBe(403);
  });
});

describe('revocations', () => {
  it('POST 201 with increasing sequence numbers; 400; 401; 403 for non-admins', async () => {
    const a = await t.call('POST', '/v1/revocations', { kind: 'sub', value: 'mallory', reason: 'left' });
    const b = await t.call('POST', '/v1/revocations', { kind: 'rule', value: 'old-rule' });
    expect(a.status).toBe(201);
    expect(b.json.seq).toBeGreaterThan(a.json.seq);
    expect((await t.call('POST', '/v1/revocations', { kind: 'user', value: 'x' })).status).toBe(400);
    expect((await t.call('POST', '/v1/revocations', { kind: 'sub', value: 'x' }, null)).status).toBe(401);
    expect((await t.call('POST', '/v1/revocations', { kind: 'sub', value: 'x' }, bob)).json.error.code).toBe(
      'EXO_ERR_AUTH_FORBIDDEN',
    );
  });

  it('GET ?after=N: a signed list of the entries after N; 400 on a bad N', async () => {
    const jwks = (await t.call('GET', '/.well-known/jwks.json', undefined, null)).json;
    const all = await t.call('GET', '/v1/revocations?after=0', undefined, null);
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toMatch(/application\/jwt/);
    const list = verifyRevocationList(all.body, { jwks, afterSeq: 0 });
    expect(list.ok).toBe(true);
    if (!list.ok) return;
    expect(list.list.entries.length).toBeGreaterThan(0);
    const head = list.list.seq;
    const none = verifyRevocationList((await t.call('GET', `/v1/revocations?after=${head}`, undefined, null)).body, {
      jwks,
      afterSeq: head,
    });
    expect(none.ok && none.list.entries).toEqual([]);
    expect((await t.call('GET', '/v1/revocations?after=-1', undefined, null)).status).toBe(400);
    expect((await t.call('GET', '/v1/revocations?after=abc', undefined, null)).status).toBe(400);
  });

  it('revoking the active key replaces it; the old key stays in the JWKS for its grants', async () => {
    const before = (await t.call('GET', '/healthz', undefined, null)).json.kid;
    const g = await t.call('POST', '/v1/grants', grantBody({ port: 7100 }), alice);
    expect((await t.call('POST', '/v1/revocations', { kind: 'kid', value: before })).status).toBe(201);
    const after = (await t.call('GET', '/healthz', undefined, null)).json.kid;
    expect(after).not.toBe(before);
    const jwks = (await t.call('GET', '/.well-known/jwks.json', undefined, null)).json;
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual(expect.arrayContaining([before, after]));
    const list = verifyRevocationList((await t.call('GET', '/v1/revocations', undefined, null)).body, { jwks });
    expect(list.ok && list.list.entries.some((e) => e.kind === 'kid' && e.value === before)).toBe(true);
    expect(g.status).toBe(201);
  });
});

describe('keys', () => {
  it('GET /.well-known/jwks.json; POST /v1/keys/rotate publishes and activates; GET /v1/keys; 403 for non-admins', async () => {
    const r = await t.call('POST', '/v1/keys/rotate');
    expect(r.status).toBe(201);
    const keys = await t.call('GET', '/v1/keys');
    expect(keys.json.items.find((k: { kid: string }) => k.kid === r.json.kid)).toMatchObject({ state: 'active' });
    expect(JSON.stringify(keys.json)).not.toMatch(/sealed|"d"/);
    const jwks = await t.call('GET', '/.well-known/jwks.json', undefined, null);
    expect(jwks.json.keys.some((k: { kid: string }) => k.kid === r.json.kid)).toBe(true);
    expect((await t.call('POST', '/v1/keys/rotate', undefined, bob)).status).toBe(403);
    expect((await t.call('GET', '/v1/keys', undefined, null)).status).toBe(401);
  });
});

describe('policy management', () => {
  it('creates, reads, lists, replaces with If-Match, deletes; 409, 412, 404, 400, 403', async () => {
    const rule = {
      id: 'r-test',
      who: { users: ['bob'] },
      dir: 'tx',
      filter: 'udp and src port {port}',
      ports: [{ from: 2000, to: 2001 }],
      maxLifetimeSec: 60,
    };
    const created = await t.call('POST', '/v1/rules', rule);
    expect(created.status).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    expect((await t.call('POST', '/v1/rules', rule)).json.error.code).toBe('EXO_ERR_POLICY_EXISTS');
    expect((await t.call('GET', '/v1/rules/r-test')).json).toMatchObject({
      id: 'r-test',
      sharing: 'either',
      layer: 'task',
      version: 1,
    });
    expect((await t.call('GET', '/v1/rules')).json.items.map((r: { id: string }) => r.id)).toContain('r-test');
    const replaced = await t.call('PUT', '/v1/rules/r-test', { ...rule, maxLifetimeSec: 30 }, undefined, {
      'if-match': '"1"',
    });
    expect(replaced).toMatchObject({ status: 200, json: { maxLifetimeSec: 30, version: 2 } });
    expect((await t.call('PUT', '/v1/rules/r-test', rule, undefined, { 'if-match': '"1"' })).status).toBe(412);
    expect((await t.call('PUT', '/v1/rules/other', rule)).json.error.code).toBe('EXO_ERR_POLICY_INVALID');
    expect((await t.call('POST', '/v1/rules', { ...rule, id: 'bad', ports: [{ from: 5, to: 1 }] })).status).toBe(400);
    expect((await t.call('DELETE', '/v1/rules/r-test')).status).toBe(204);
    expect((await t.call('DELETE', '/v1/rules/r-test')).status).toBe(404);
    expect((await t.call('GET', '/v1/rules/r-test')).json.error.code).toBe('EXO_ERR_POLICY_NOT_FOUND');
    expect((await t.call('GET', '/v1/rules', undefined, bob)).status).toBe(403);
  });

  it('works alike for principals, groups and drivers; tokens are issued and deleted', async () => {
    expect((await t.call('POST', '/v1/groups', { id: 'g-test', capabilities: ['raw-ethertype'] })).status).toBe(201);
    expect((await t.call('POST', '/v1/drivers', { id: 'drv-test', attributes: { ip: '10.0.0.1' } })).status).toBe(201);
    expect((await t.call('POST', '/v1/drivers', { id: 'drv-x', attributes: { ip: '1.2.3.4 or 1' } })).status).toBe(400);
    const token = await t.principal('dave', { groups: ['g-test'] });
    expect((await t.call('GET', '/v1/principals/dave')).json).toMatchObject({ uid: 1000, admin: false });
    expect((await t.call('POST', '/v1/principals/nobody/tokens')).status).toBe(404);
    expect((await t.call('DELETE', '/v1/principals/dave/tokens')).json).toEqual({ deleted: 1 });
    expect((await t.call('POST', '/v1/grants', grantBody(), token)).status).toBe(401);
    expect((await t.call('DELETE', '/v1/principals/dave')).status).toBe(204);
    expect((await t.call('DELETE', '/v1/groups/g-test')).status).toBe(204);
    expect((await t.call('DELETE', '/v1/drivers/drv-test')).status).toBe(204);
  });

  it('409: an administrator cannot delete, demote or revoke the tokens of itself; another administrator can', async () => {
    const root = await t.principal('root2', { admin: true });
    for (const [method, url, body] of [
      ['DELETE', '/v1/principals/root2', undefined],
      ['DELETE', '/v1/principals/root2/tokens', undefined],
      ['PUT', '/v1/principals/root2', { id: 'root2', uid: 0, admin: false }],
    ] as const) {
      const r = await t.call(method, url, body, root);
      expect(r.status, `${method} ${url}`).toBe(409);
      expect(r.json.error.code).toBe('EXO_ERR_POLICY_SELF_LOCKOUT');
    }
    // Still an administrator with a working token; replacing itself as an admin is fine.
    expect((await t.call('PUT', '/v1/principals/root2', { id: 'root2', uid: 0, admin: true }, root)).status).toBe(200);
    expect((await t.call('GET', '/v1/principals', undefined, root)).status).toBe(200);
    // Another administrator (the bootstrap one) may remove it.
    expect((await t.call('DELETE', '/v1/principals/root2/tokens')).json).toEqual({ deleted: 1 });
    expect((await t.call('GET', '/v1/principals', undefined, root)).status).toBe(401);
    expect((await t.call('DELETE', '/v1/principals/root2')).status).toBe(204);
  });

  it('a disabled principal cannot authenticate', async () => {
    const token = await t.principal('erin', { groups: ['users'] });
    await t.call('PUT', '/v1/principals/erin', { id: 'erin', uid: 1000, groups: ['users'], disabled: true });
    expect((await t.call('POST', '/v1/grants', grantBody(), token)).status).toBe(401);
  });

  it('GET /v1/audit records grants, revocations and policy changes with request ids', async () => {
    const r = await t.call('GET', '/v1/audit?after=0');
    const actions = new Set(r.json.items.map((a: { action: string }) => a.action));
    for (const a of ['grant.issue', 'revocation.create', 'rules.put', 'principals.put', 'token.add', 'key.activate'])
      expect(actions).toContain(a);
    expect(r.json.items.find((a: { action: string }) => a.action === 'grant.issue')).toMatchObject({
      actor: 'alice',
      requestId: expect.any(String),
    });
  });
});

describe('operations', () => {
  it('GET /healthz, /metrics, /docs, unknown routes', async () => {
    expect((await t.call('GET', '/healthz', undefined, null)).json).toMatchObject({ status: 'ok', store: 'sqlite' });
    const m = await t.call('GET', '/metrics', undefined, null);
    expect(m.body).toMatch(/exonet_grants_total\{result="issued"\}/);
    expect(m.body).toMatch(/exonet_http_request_duration_seconds_bucket/);
    const docs = await t.call('GET', '/docs/json', undefined, null);
    expect(Object.keys(docs.json.paths)).toEqual(
      expect.arrayContaining([
        '/v1/grants',
        '/v1/grants/{id}/renew',
        '/.well-known/jwks.json',
        '/v1/revocations',
        '/v1/revocations/stream',
        '/v1/rules',
        '/healthz',
        '/metrics',
      ]),
    );
    expect((await t.call('GET', '/docs', undefined, null)).status).toBeLessThan(400);
    expect((await t.call('GET', '/nope', undefined, null)).json.error.code).toBe('EXO_ERR_HTTP_NOT_FOUND');
  });

  it('429 past the per-principal rate limit, counted per principal', async () => {
    const limited = await startTestServer({ rateLimit: { max: 20, timeWindowMs: 60_000 } });
    try {
      await standardPolicy(limited);
      const p1 = await limited.principal('p1', { groups: ['users'] });
      const p2 = await limited.principal('p2', { groups: ['users'] });
      const statuses: number[] = [];
      for (let i = 0; i < 21; i++)
        statuses.push((await limited.call('POST', '/v1/grants', grantBody({ port: 8000 + i }), p1)).status);
      expect(statuses).toEqual([...Array(20).fill(201), 429]);
      const last = await limited.call('POST', '/v1/grants', grantBody({ port: 8100 }), p1);
      expect(last.json.error.code).toBe('EXO_ERR_HTTP_RATE_LIMITED');
      expect((await limited.call('POST', '/v1/grants', grantBody({ port: 8200 }), p2)).status).toBe(201);
    } finally {
      await limited.close();
    }
  });

  it('a holder key not in cnf cannot reuse the grant (proof with another key fails)', async () => {
    const g = await t.call('POST', '/v1/grants', grantBody({ port: 9000 }), alice);
    const jwks = (await t.call('GET', '/.well-known/jwks.json', undefined, null)).json;
    const v = verifyGrant(g.json.grant, { jwks, audience: 'drv1', verifyProgram: bpfProgramVerifier });
    const thief = generateHolderKey();
    const c = createChallenge();
    expect(
      v.ok && verifyHolderProof(c, signChallenge(c, thief), v.claims.cnf.jkt, publicJwk(thief.publicKey)),
    ).toMatchObject({ code: 'EXO_ERR_HOLDER_MISMATCH' });
  });
});
