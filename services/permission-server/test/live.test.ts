/** Against a real listening server: HTTP, the SSE revocation feed, and the command line over the API. */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createKeySet, type RevocationList, verifyRevocationList } from '@exonet/grant';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holder, standardPolicy, startTestServer, type TestServer } from './harness.ts';

const run = promisify(execFile);
const bin = new URL('../../../packages/cli/bin/exonet.js', import.meta.url).pathname;

let t: TestServer;
let alice: string;

async function http(method: string, path: string, body?: unknown, token: string | null = t.admin) {
  const res = await fetch(`${t.server.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** Reads server-sent events until `count` arrived. */
async function readEvents(res: Response, count: number): Promise<{ id: string; event: string; data: string }[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const events: { id: string; event: string; data: string }[] = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
      );
      if (fields.data) events.push({ id: fields.id ?? '', event: fields.event ?? '', data: fields.data });
      end = buffer.indexOf('\n\n');
    }
  }
  reader.releaseLock();
  return events;
}

beforeAll(async () => {
  t = await startTestServer({ heartbeatSec: 3600 });
  await standardPolicy(t);
  alice = await t.principal('alice', { groups: ['users', 'dns'] });
});
afterAll(async () => {
  await t.close();
});

describe('a real listening server', () => {
  it('issues grants over HTTP and pushes signed revocations over server-sent events', async () => {
    const g = await http('POST', '/v1/grants', { driver: 'drv1', dir: 'rx', filter: 'udp', port: 5000, holder }, alice);
    expect(g.status).toBe(201);
    const jwks = (await http('GET', '/.well-known/jwks.json', undefined, null)).json;
    const keys = createKeySet(jwks);
    expect(keys.ok).toBe(true);

    const stream = await fetch(`${t.server.url}/v1/revocations/stream?after=0`);
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const first = await readEvents(stream, 1);
    const initial = verifyRevocationList(first[0]!.data, { jwks, afterSeq: 0 });
    expect(initial.ok).toBe(true);
    const head = initial.ok ? initial.list.seq : -1;
    const revoked = await http('POST', '/v1/revocations', { kind: 'jti', value: g.json.id, reason: 'test' });
    const pushed = await readEvents(stream, 1);
    const list = verifyRevocationList(pushed[0]!.data, { jwks, afterSeq: head });
    expect(list.ok).toBe(true);
    const l = (list as { list: RevocationList }).list;
    expect(l.seq).toBe(revoked.json.seq);
    expect(l.entries).toEqual([expect.objectContaining({ kind: 'jti', value: g.json.id, seq: revoked.json.seq })]);
    expect(pushed[0]!.id).toBe(String(revoked.json.seq));
    await stream.body!.cancel();

    // Resuming with Last-Event-ID starts after that sequence number.
    const resumed = await fetch(`${t.server.url}/v1/revocations/stream`, {
      headers: { 'last-event-id': String(head) },
    });
    const again = await readEvents(resumed, 1);
    const r = verifyRevocationList(again[0]!.data, { jwks, afterSeq: head });
    expect(r.ok && r.list.entries.map((e) => e.seq)).toEqual([revoked.json.seq]);
    await resumed.body!.cancel();
  }, 180_000);

  it('exonet grant verify: exit 0 and the claims for a good grant, exit 1 and the reason when revoked or for the wrong driver', async () => {
    const g = await http('POST', '/v1/grants', { driver: 'drv1', dir: 'rx', filter: 'udp', port: 5001, holder }, alice);
    const file = join(t.dir, 'grant.jws');
    writeFileSync(file, `${g.json.grant}\n`);
    const jwksFile = join(t.dir, 'jwks.json');
    writeFileSync(jwksFile, (await http('GET', '/.well-known/jwks.json', undefined, null)).text);

    const ok = await run(process.execPath, [
      bin,
      'grant',
      'verify',
      '--jwks',
      jwksFile,
      '--aud',
      'drv1',
      '--revocations',
      `${t.server.url}/v1/revocations`,
      file,
    ]);
    expect(JSON.parse(ok.stdout)).toMatchObject({ jti: g.json.id, aud: 'drv1', sub: 'alice' });

    const wrongAud = await run(process.execPath, [
      bin,
      'grant',
      'verify',
      '--jwks',
      `${t.server.url}/.well-known/jwks.json`,
      '--aud',
      'drv2',
      file,
    ]).catch((e) => e);
    expect(wrongAud).toMatchObject({ code: 1 });
    expect(wrongAud.stderr).toMatch(/EXO_ERR_GRANT_AUDIENCE/);

    await http('POST', '/v1/revocations', { kind: 'jti', value: g.json.id });
    const revokedRun = await run(process.execPath, [
      bin,
      'grant',
      'verify',
      '--jwks',
      jwksFile,
      '--aud',
      'drv1',
      '--revocations',
      `${t.server.url}/v1/revocations?after=0`,
      file,
    ]).catch((e) => e);
    expect(revokedRun).toMatchObject({ code: 1 });
    expect(revokedRun.stdout).toMatch(/EXO_ERR_GRANT_REVOKED/);

    // `-` reads the grant from standard input.
    const child = spawn(process.execPath, [bin, 'grant', 'verify', '--jwks', jwksFile, '--aud', 'drv1', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stdin.end(`${g.json.grant}\n`);
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out).jti).toBe(g.json.id);
  }, 180_000);

  it('exonet policy / grant request / revoke over the HTTP API', async () => {
    const env = { ...process.env, EXONET_SERVER: t.server.url, EXONET_TOKEN: t.admin };
    const ruleFile = join(t.dir, 'rule.json');
    writeFileSync(
      ruleFile,
      JSON.stringify({
        id: 'cli-rule',
        who: { users: ['alice'] },
        dir: 'rx',
        filter: 'tcp and dst port {port}',
        ports: [{ from: 8080, to: 8080 }],
        maxLifetimeSec: 60,
      }),
    );
    const put = await run(process.execPath, [bin, 'policy', 'put', 'rules', ruleFile], { env });
    expect(JSON.parse(put.stdout)).toMatchObject({ id: 'cli-rule', version: 1 });
    const list = await run(process.execPath, [bin, 'policy', 'list', 'rules'], { env });
    expect(JSON.parse(list.stdout).items.map((r: { id: string }) => r.id)).toContain('cli-rule');

    const out = join(t.dir, 'cli-grant.jws');
    const req = await run(
      process.execPath,
      [
        bin,
        'grant',
        'request',
        '--driver',
        'drv1',
        '--filter',
        'tcp',
        '--port',
        '8080',
        '--exclusive',
        '--holder-key',
        join(t.dir, 'holder.jwk'),
        '--out',
        out,
        '--token',
        alice,
      ],
      { env },
    );
    const issued = JSON.parse(req.stdout);
    expect(issued).toMatchObject({ rule: 'cli-rule', exclusive: true });
    const conflict = await run(
      process.execPath,
      [
        bin,
        'grant',
        'request',
        '--driver',
        'drv1',
        '--filter',
        'tcp',
        '--port',
        '8080',
        '--exclusive',
        '--holder-key',
        join(t.dir, 'holder.jwk'),
        '--token',
        alice,
      ],
      { env },
    ).catch((e) => e);
    expect(conflict).toMatchObject({ code: 1 });
    expect(conflict.stderr).toMatch(/EXO_ERR_GRANT_CONFLICT/);

    const revoke = await run(process.execPath, [bin, 'revoke', '--rule', 'cli-rule', '--reason', 'cli test'], { env });
    expect(JSON.parse(revoke.stdout)).toMatchObject({ kind: 'rule', value: 'cli-rule', seq: expect.any(Number) });
    const del = await run(process.execPath, [bin, 'policy', 'delete', 'rule', 'cli-rule'], { env });
    expect(del.stdout).toMatch(/cli-rule/);
  }, 180_000);

  it('sends heartbeat lists (same sequence, no entries, fresh valid_until) and refuses a bad ?after', async () => {
    const beating = await startTestServer({ heartbeatSec: 1 });
    try {
      const jwks = (await beating.call('GET', '/.well-known/jwks.json', undefined, null)).json;
      const stream = await fetch(`${beating.server.url}/v1/revocations/stream?after=0`);
      const [initial, beat] = await readEvents(stream, 2);
      const a = verifyRevocationList(initial!.data, { jwks, afterSeq: 0 });
      const b = verifyRevocationList(beat!.data, { jwks, afterSeq: a.ok ? a.list.seq : 0 });
      expect(b.ok && b.list.entries).toEqual([]);
      expect(b.ok && a.ok && b.list.seq === a.list.seq && b.list.valid_until >= a.list.valid_until).toBe(true);
      await stream.body!.cancel();
      expect((await fetch(`${beating.server.url}/v1/revocations/stream?after=x`)).status).toBe(400);
    } finally {
      await beating.close();
    }
  });

  it('refuses streams past the limit with 503 and EXO_ERR_HTTP_BUSY, and counts closed ones out', async () => {
    const busy = await startTestServer({ sse: { maxStreams: 2 } });
    try {
      const a = await fetch(`${busy.server.url}/v1/revocations/stream`);
      const b = await fetch(`${busy.server.url}/v1/revocations/stream`);
      await readEvents(a, 1);
      await readEvents(b, 1);
      const refused = await fetch(`${busy.server.url}/v1/revocations/stream`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('EXO_ERR_HTTP_BUSY');
      await a.body!.cancel();
      // The server sees the close a moment later.
      let again: Response | undefined;
      for (let i = 0; i < 100; i++) {
        again = await fetch(`${busy.server.url}/v1/revocations/stream`);
        if (again.status === 200) break;
        await again.body?.cancel();
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(again!.status).toBe(200);
      await again!.body!.cancel();
      await b.body!.cancel();
    } finally {
      await busy.close();
    }
  });

  it('ends event streams on graceful shutdown', async () => {
    const other = await startTestServer();
    const stream = await fetch(`${other.server.url}/v1/revocations/stream`);
    await readEvents(stream, 1);
    const closing = other.close();
    const reader = stream.body!.getReader();
    let done = false;
    while (!done) done = (await reader.read()).done;
    await closing;
    expect(done).toBe(true);
  });
});
