/**
 * `exonet bench grants`: grants issued per second over real HTTP by concurrent keep-alive clients against a
 * permission server in its own process (SQLite store, durable group commit), with p50/p99 latency; and grant
 * verifications per second in the grant package (the full driver-side check, one core).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpfProgramVerifier, createKeySet, generateHolderKey, publicJwk, verifyGrant } from '@exonet/grant';
import { generateToken } from '../auth.ts';

interface Options {
  readonly quick: boolean;
  readonly log: (line: string) => void;
}

const bin = new URL('../../../../packages/cli/bin/exonet.js', import.meta.url).pathname;

function post(
  agent: Agent,
  url: URL,
  path: string,
  token: string,
  body: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function startServer(dir: string, admin: string): Promise<{ child: ChildProcess; url: URL }> {
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      store: `sqlite:${join(dir, 'ps.db')}`,
      listen: '127.0.0.1:0',
      logLevel: 'warn',
      rateLimit: { max: 1_000_000_000, timeWindowMs: 60_000 },
    }),
  );
  // EXONET_BENCH_SERVER_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the server process
  // alone: node refuses --cpu-prof in NODE_OPTIONS, and the bench's own client load would blur the profile.
  const nodeArgs = (process.env.EXONET_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgs, bin, 'permission-server', '--config', config], {
    env: { ...process.env, EXONET_ADMIN_TOKEN: admin },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<URL>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) resolve(new URL((JSON.parse(line) as { url: string }).url));
    });
    child.once('exit', (code) => reject(new Error(`permission server exited with ${code}`)));
  });
  return { child, url };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function run({ quick, log }: Options): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'exonet-bench-grants-'));
  const admin = generateToken();
  const { child, url } = await startServer(dir, admin);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const setup = async (path: string, body: unknown, token = admin) => {
      const r = await post(agent, url, path, token, JSON.stringify(body));
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${r.text}`);
      return JSON.parse(r.text) as Record<string, unknown>;
    };
    await setup('/v1/drivers', { id: 'drv1', attributes: { ip: '10.77.0.2' } });
    await setup('/v1/rules', {
      id: 'bench',
      who: { groups: ['bench'] },
      dir: 'rx',
      filter: 'udp and dst port {port}',
      ports: [{ from: 1024, to: 65535 }],
      maxLifetimeSec: 300,
      sharing: 'shared',
    });
    await setup('/v1/principals', { id: 'bench', uid: 1000, groups: ['bench'] });
    const token = (await setup('/v1/principals/bench/tokens', {})).token as string;
    const holder = publicJwk(generateHolderKey().publicKey);
    const body = JSON.stringify({ driver: 'drv1', dir: 'rx', filter: 'udp', port: 5353, holder });

    const concurrency = quick ? 4 : 32;
    const warmup = quick ? 20 : Math.min(2000, Number(process.env.EXONET_BENCH_GRANTS ?? 2000));
    const total = quick ? 200 : Number(process.env.EXONET_BENCH_GRANTS ?? 30_000);
    let firstGrant = '';
    const runLoad = async (n: number, latencies: number[] | null) => {
      let next = 0;
      let failures = 0;
      const worker = async () => {
        while (next < n) {
          next++;
          const t0 = performance.now();
          const r = await post(agent, url, '/v1/grants', token, body);
          if (latencies) latencies.push(performance.now() - t0);
          if (r.status !== 201) failures++;
          else if (!firstGrant) firstGrant = (JSON.parse(r.text) as { grant: string }).grant;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      if (failures > 0) throw new Error(`${failures} grant requests failed`);
    };
    log(`warming up (${warmup} grants)`);
    await runLoad(warmup, null);
    const latencies: number[] = [];
    log(`issuing ${total} grants with ${concurrency} concurrent clients`);
    const t0 = performance.now();
    await runLoad(total, latencies);
    const seconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const grantsPerS = total / seconds;

    const jwksRes = await fetch(new URL('/.well-known/jwks.json', url));
    const keySet = createKeySet(await jwksRes.json());
    if (!keySet.ok) throw new Error('JWKS invalid');
    const opts = { jwks: keySet.keySet, audience: 'drv1', verifyProgram: bpfProgramVerifier };
    if (!verifyGrant(firstGrant, opts).ok) throw new Error('issued grant does not verify');
    const verifications = quick ? 200 : 40_000;
    log(`verifying ${verifications} grants`);
    const v0 = performance.now();
    for (let i = 0; i < verifications; i++) {
      if (!verifyGrant(firstGrant, opts).ok) throw new Error('verification failed');
    }
    const verifyPerS = verifications / ((performance.now() - v0) / 1000);
    const result = {
      grants_per_s: Math.round(grantsPerS),
      p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      verify_per_s: Math.round(verifyPerS),
      concurrency,
      grants: total,
    };
    log(
      `grants/s ${result.grants_per_s}, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, verifications/s ${result.verify_per_s}`,
    );
    return result;
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
