/**
 * Durability: a real server process under concurrent load is killed with SIGKILL (kill -9); restarted on the
 * same SQLite file, it still has every grant, revocation and policy change it acknowledged.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateHolderKey, publicJwk, verifyRevocationList } from '@exonet/grant';
import { afterAll, describe, expect, it } from 'vitest';
import { generateToken } from '../src/auth.ts';

const bin = new URL('../../../packages/cli/bin/exonet.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'exonet-durability-'));
const admin = generateToken();
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      bin,
      'permission-server',
      '--store',
      `sqlite:${join(dir, 'ps.db')}`,
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ],
    {
      env: { ...process.env, EXONET_ADMIN_TOKEN: admin },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`server exited early (${code})`)));
  });
  return { child, url };
}

async function api(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
}

describe('kill -9 durability', () => {
  it('loses nothing it acknowledged', async () => {
    const first = await startServer();
    const u = first.url;
    expect((await api(u, 'POST', '/v1/drivers', admin, { id: 'drv1', attributes: {} })).status).toBe(201);
    expect(
      (
        await api(u, 'POST', '/v1/rules', admin, {
          id: 'load',
          who: { groups: ['load'] },
          dir: 'rx',
          filter: 'udp and dst port {port}',
          ports: [{ from: 1024, to: 65535 }],
          maxLifetimeSec: 300,
          sharing: 'shared',
        })
      ).status,
    ).toBe(201);
    expect((await api(u, 'POST', '/v1/principals', admin, { id: 'loader', uid: 1000, groups: ['load'] })).status).toBe(
      201,
    );
    const token = (await api(u, 'POST', '/v1/principals/loader/tokens', admin)).json.token as string;
    const holder = publicJwk(generateHolderKey().publicKey);

    const grants = new Map<string, string>();
    const revocations: number[] = [];
    const groups: string[] = [];
    let killed = false;
    let acks = 0;
    const target = 150;
    let killedAt: Promise<void> | undefined;
    const ack = () => {
      acks++;
      if (acks >= target && !killed) {
        killed = true;
        // No waiting: requests are still in flight when the process dies.
        first.child.kill('SIGKILL');
        killedAt = new Promise((r) => first.child.once('exit', () => r()));
      }
    };
    const loop = async (step: (i: number) => Promise<void>) => {
      for (let i = 0; !killed; i++) {
        try {
          await step(i);
        } catch {
          // Connection refused or reset after the kill: not acknowledged, so nothing is promised.
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: 6 }, (_, w) =>
        loop(async (i) => {
          const r = await api(u, 'POST', '/v1/grants', token, {
            driver: 'drv1',
            dir: 'rx',
            filter: 'udp',
            port: 2000 + ((w * 1000 + i) % 60000),
            holder,
          });
          if (r.status === 201) {
            grants.set(r.json.id, r.json.grant);
            ack();
          }
        }),
      ),
      loop(async (i) => {
        const r = await api(u, 'POST', '/v1/revocations', admin, { kind: 'sub', value: `gone-${i}` });
        if (r.status === 201) {
          revocations.push(r.json.seq);
          ack();
        }
      }),
      loop(async (i) => {
        const r = await api(u, 'PUT', `/v1/groups/g-${i}`, admin, { id: `g-${i}`, capabilities: [] });
        if (r.status === 200) {
          groups.push(`g-${i}`);
          ack();
        }
      }),
    ]);
    await killedAt;
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(grants.size).toBeGreaterThan(0);

    const second = await startServer();
    try {
      const v = second.url;
      for (const [id, jws] of grants) {
        const r = await api(v, 'GET', `/v1/grants/${id}`, admin);
        expect(r.status, `grant ${id}`).toBe(200);
        expect(r.json.jws).toBe(jws);
      }
      const jwks = (await api(v, 'GET', '/.well-known/jwks.json', admin)).json;
      const list = verifyRevocationList((await api(v, 'GET', '/v1/revocations?after=0', admin)).text, { jwks });
      expect(list.ok).toBe(true);
      const seqs = new Set(list.ok ? list.list.entries.map((e) => e.seq) : []);
      for (const seq of revocations) expect(seqs.has(seq), `revocation ${seq}`).toBe(true);
      for (const id of groups) expect((await api(v, 'GET', `/v1/groups/${id}`, admin)).status, `group ${id}`).toBe(200);
      // Sequence numbers keep increasing after the restart.
      const next = await api(v, 'POST', '/v1/revocations', admin, { kind: 'sub', value: 'after-restart' });
      expect(next.json.seq).toBeGreaterThan(Math.max(0, ...revocations));
      // The audit log has every acknowledged grant.
      const audit = (await api(v, 'GET', '/v1/audit?after=0', admin)).json.items as {
        action: string;
        subject: string;
      }[];
      const audited = new Set(audit.filter((a) => a.action === 'grant.issue').map((a) => a.subject));
      const sample = [...grants.keys()].slice(0, 50);
      for (const id of sample) expect(audited.has(id) || audit.length >= 1000, `audit of ${id}`).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
  }, 180_000);
});
