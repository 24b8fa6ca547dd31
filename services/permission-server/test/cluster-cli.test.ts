/**
 * `exonet permission-server --store etcd:URL,URL,URL` as real processes: two replicas of one identity
 * (shared EXONET_KEK and EXONET_ADMIN_TOKEN, same --issuer) on a real 3-member etcd cluster.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../src/auth.ts';
import { EtcdCluster } from './support/etcd-cluster.ts';
import { waitFor } from './support/etcd-fixtures.ts';
import { api } from './support/etcd-replicas.ts';

const exonet = fileURLToPath(new URL('../../../packages/cli/bin/exonet.js', import.meta.url));

/** Starts `exonet permission-server` and resolves with its URL (from the JSON line it prints). */
function startReplica(
  endpoints: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(
    process.execPath,
    [
      exonet,
      'permission-server',
      '--store',
      `etcd:${endpoints.join(',')}`,
      '--listen',
      '127.0.0.1:0',
      '--issuer',
      'exonet-cli-cluster',
      '--log-level',
      'warn',
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`replica did not start: ${err}`)), 60_000);
    proc.stderr!.on('data', (d) => {
      err += d;
    });
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) {
        clearTimeout(timer);
        resolve({ proc, url: JSON.parse(line).url as string });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited with ${code}: ${err}`));
    });
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

describe('exonet permission-server --store etcd:...', () => {
  let cluster: EtcdCluster;
  const procs: ChildProcess[] = [];
  const urls: string[] = [];
  const admin = generateToken();

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
    const env = { EXONET_KEK: randomBytes(32).toString('base64url'), EXONET_ADMIN_TOKEN: admin };
    // The first start bootstraps keys and the admin; the second joins the same identity.
    for (let i = 0; i < 2; i++) {
      const r = await startReplica(cluster.endpoints, env);
      procs.push(r.proc);
      urls.push(r.url);
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(procs.map(stop));
    await cluster?.stop();
  }, 60_000);

  it('runs two processes as one cluster identity: one JWKS, revocations numbered once, visible at both', async () => {
    const [a, b] = await Promise.all(urls.map((u) => api(u, 'GET', '/.well-known/jwks.json')));
    expect(a.json).toEqual(b.json);
    const health = await api(urls[1], 'GET', '/healthz');
    expect(health.status).toBe(200);
    const revoked = await api(
      urls[0],
      'POST',
      '/v1/revocations',
      { kind: 'sub', value: 'mallory', reason: 'cli' },
      admin,
    );
    expect(revoked.status, revoked.body).toBe(201);
    await waitFor(
      async () => {
        const res = await fetch(`${urls[1]}/v1/revocations?after=0`);
        return (
          Number(res.headers.get('x-exonet-seq')) >= revoked.json.seq && (await res.text()).split('.').length === 3
        );
      },
      30_000,
      'revocation visible at the other replica',
    );
  });
});
