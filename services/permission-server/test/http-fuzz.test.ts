/**
 * Hostile input at the HTTP edge, property-based: arbitrary JSON (and non-JSON) bodies, valid requests with
 * one field replaced by arbitrary JSON, odd path ids, query strings, content types and credentials, on every
 * route. The server must answer each with a 2xx or a 4xx carrying the error body ({ error: { code, message } }
 * with an EXO_ERR_ code): never a 5xx, never a crash, and afterwards it still works.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holder, standardPolicy, startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
let user: string;

beforeAll(async () => {
  t = await startTestServer();
  await standardPolicy(t);
  user = await t.principal('fuzzer', { groups: ['users'] });
});
afterAll(() => t.close());

/** Routes with a valid body to mutate (undefined: no body). */
const ROUTES: { method: string; url: (id: string) => string; body?: Record<string, unknown> }[] = [
  {
    method: 'POST',
    url: () => '/v1/grants',
    body: { driver: 'drv1', dir: 'rx', filter: 'udp', port: 5000, holder, ttl: 60 },
  },
  { method: 'POST', url: (id) => `/v1/grants/${id}/renew`, body: { ttl: 30 } },
  { method: 'GET', url: (id) => `/v1/grants/${id}` },
  { method: 'GET', url: () => '/v1/grants' },
  { method: 'POST', url: () => '/v1/revocations', body: { kind: 'jti', value: 'g-none', reason: 'fuzz' } },
  { method: 'GET', url: () => '/v1/revocations' },
  { method: 'GET', url: () => '/v1/keys' },
  { method: 'GET', url: () => '/.well-known/jwks.json' },
  { method: 'POST', url: (id) => `/v1/principals/${id}/tokens` },
  { method: 'DELETE', url: (id) => `/v1/principals/${id}/tokens` },
  { method: 'GET', url: () => '/v1/audit' },
  { method: 'POST', url: () => '/v1/principals', body: { id: 'p1', uid: 1001, groups: ['users'] } },
  { method: 'PUT', url: (id) => `/v1/principals/${id}`, body: { id: 'p1', uid: 1002, groups: [] } },
  { method: 'GET', url: (id) => `/v1/principals/${id}` },
  { method: 'DELETE', url: (id) => `/v1/principals/${id}` },
  { method: 'POST', url: () => '/v1/groups', body: { id: 'g1', capabilities: ['bind-privileged'] } },
  {
    method: 'POST',
    url: () => '/v1/rules',
    body: {
      id: 'r1',
      who: { groups: ['users'] },
      dir: 'rx',
      filter: 'udp and dst port {port}',
      ports: [{ from: 2000, to: 3000 }],
      maxLifetimeSec: 60,
      sharing: 'shared',
    },
  },
  { method: 'PUT', url: (id) => `/v1/rules/${id}`, body: { id: 'r1', who: {}, dir: 'tx', filter: 'ip' } },
  { method: 'POST', url: () => '/v1/drivers', body: { id: 'd9', attributes: { ip: '10.0.0.9' } } },
  { method: 'GET', url: () => '/healthz' },
];

const json = fc.jsonValue({ maxDepth: 3 });
const oddId = fc.oneof(
  fc.constantFrom('x', 'p1', 'fuzzer', 'admin', '..', '%2e%2e', '%00', 'a'.repeat(600), '%F0%9F%92%A9'),
  fc.string({ minLength: 1, maxLength: 40 }).map(encodeURIComponent),
);
const credential = fc.constantFrom<'admin' | 'user' | 'none' | 'garbage' | 'empty'>(
  'admin',
  'user',
  'none',
  'garbage',
  'empty',
);
const body = (valid: Record<string, unknown> | undefined) =>
  fc.oneof(
    json,
    fc.constant(undefined),
    valid === undefined
      ? json
      : fc
          .record({ key: fc.constantFrom(...Object.keys(valid), '__proto__', 'constructor', 'extra'), value: json })
          .map(({ key, value }) => JSON.parse(JSON.stringify({ ...valid, [key]: value })) as unknown),
  );

function checkReply(r: { status: number; json: unknown; body: string }, what: string): void {
  expect(r.status, `${what}: ${r.body.slice(0, 300)}`).toBeLessThan(500);
  if (r.status >= 400) {
    const e = (r.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    expect(typeof e?.code === 'string' && e.code.startsWith('EXO_ERR_'), `${what}: ${r.body.slice(0, 300)}`).toBe(true);
    expect(typeof e?.message, what).toBe('string');
  }
}

describe('the HTTP API under hostile input', () => {
  it('answers every route, whatever the body, id and credentials, with 2xx or a 4xx error body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: ROUTES.length - 1 })
          .chain((i) => fc.record({ i: fc.constant(i), id: oddId, body: body(ROUTES[i]!.body), who: credential })),
        async ({ i, id, body: b, who }) => {
          const route = ROUTES[i]!;
          const token = who === 'admin' ? t.admin : who === 'user' ? user : who === 'garbage' ? 'x'.repeat(64) : null;
          const headers: Record<string, string> = who === 'empty' ? { authorization: 'Bearer ' } : {};
          const url = route.url(id);
          const r = await t.call(route.method, url, b === undefined ? undefined : JSON.stringify(b), token, {
            ...headers,
            ...(b === undefined ? {} : { 'content-type': 'application/json' }),
          });
          checkReply(r, `${route.method} ${url} as ${who} with ${JSON.stringify(b)?.slice(0, 200)}`);
        },
      ),
      { numRuns: 600 },
    );
  });

  it('refuses bodies that are not JSON, or JSON of the wrong content type, with a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 200 }),
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
          '',
        ),
        fc.constantFrom('/v1/grants', '/v1/revocations', '/v1/rules', '/v1/principals'),
        async (text, type, url) => {
          const r = await t.call('POST', url, text, t.admin, type === '' ? {} : { 'content-type': type });
          checkReply(r, `POST ${url} ${type} ${JSON.stringify(text)}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('answers odd query strings on the list routes with 2xx or a 4xx error body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/revocations', '/v1/grants', '/v1/audit', '/v1/rules'),
        fc.dictionary(fc.constantFrom('after', 'limit', 'sub', 'live', 'before', 'x'), fc.string({ maxLength: 30 })),
        async (path, query) => {
          const qs = new URLSearchParams(query).toString();
          const r = await t.call('GET', qs ? `${path}?${qs}` : path, undefined, t.admin);
          checkReply(r, `GET ${path}?${qs}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('still issues a grant afterwards', async () => {
    // The fuzzer may have deleted 'fuzzer' or its tokens (as admin, legitimately): a fresh principal asks.
    const after = await t.principal('after-fuzz', { groups: ['users'] });
    const r = await t.call(
      'POST',
      '/v1/grants',
      { driver: 'drv1', dir: 'rx', filter: 'udp', port: 5001, holder },
      after,
    );
    expect(r.status, r.body).toBe(201);
    expect(typeof r.json.grant).toBe('string');
  });
});
