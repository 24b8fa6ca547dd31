/**
 * `exonet bench grants`: grants issued per second over real HTTP by concurrent keep-alive clients against a
 * permission server in its own process (SQLite store, durable group commit), with p50/p99 latency; and grant
 * verifications per second in the grant package (the full driver-side check, one core).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bpfProgramVerifier,
  createKeySet,
  decodeGrantUnverified,
  ED25519_BACKEND,
  generateHolderKey,
  publicJwk,
  verifyGrant,
} from '@exonet/grant';
import { generateToken } from '../auth.ts';
import { buildPost, type LoadClient, runLoad } from './load.ts';

/** Distinct issued grants kept for the verification phase (each verified in turn; no verdict is cached). */
const VERIFY_SET = 10_000;

/** User + system CPU seconds of a process, all threads (Linux /proc; 0 elsewhere). */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** CPU seconds per thread (name/tid) of a process (Linux /proc), for the log: where the server's CPU goes. */
function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}/${tid}`;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
    }
  } catch {
    // The figures are informative only.
  }
  return out;
}

/** USER_HZ: 100 on every Linux architecture node runs on. */
const CLOCK_TICKS = 100;

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
    // 40 keep-alive clients by default (EXONET_BENCH_CONCURRENCY to change): each waits for its grant before
    // asking again, so throughput is clients / latency, and latency has a floor in the durable group commit
    // (gather, WAL write, fsync) however idle the CPU; more clients queue longer on the event loop (p99).
    // docs/permission-server.md gives 32 to 64.
    const concurrency = quick ? 4 : Number(process.env.EXONET_BENCH_CONCURRENCY ?? 40);
    const warmup = quick ? 20 : Math.min(2000, Number(process.env.EXONET_BENCH_GRANTS ?? 2000));
    const total = quick ? 200 : Number(process.env.EXONET_BENCH_GRANTS ?? 30_000);
    // One principal per client, each with its own token, holder key and port: distinct requests, distinct
    // filters (each built once, then from the server's cache, as a busy server sees repeated shapes).
    const clients: LoadClient[] = [];
    const issued: string[] = [];
    for (let i = 0; i < concurrency; i++) {
      const id = `bench${i}`;
      await setup('/v1/principals', { id, uid: 1000 + i, groups: ['bench'] });
      const token = (await setup(`/v1/principals/${id}/tokens`, {})).token as string;
      const holder = publicJwk(generateHolderKey().publicKey);
      const port = 20_000 + i;
      const body = JSON.stringify({ driver: 'drv1', dir: 'rx', filter: 'udp', port, holder });
      clients.push({
        request: buildPost(url.host, '/v1/grants', { authorization: `Bearer ${token}` }, body),
        check: (r) => {
          // Every response: 201 and a grant that parses (three parts, claims naming this principal).
          if (r.status !== 201) throw new Error(`grant request failed: ${r.status} ${r.body.toString('utf8')}`);
          const grant = (JSON.parse(r.body.toString('utf8')) as { grant: string }).grant;
          const claims = decodeGrantUnverified(grant)?.claims as { sub?: string } | undefined;
          if (claims?.sub !== id) throw new Error(`response is not a grant for ${id}`);
          if (issued.length < VERIFY_SET) issued.push(grant);
        },
      });
    }
    const target = { host: url.hostname, port: Number(url.port) };
    log(`warming up (${warmup} grants)`);
    await runLoad(target, clients, warmup);
    log(`issuing ${total} grants with ${concurrency} concurrent clients`);
    const serverCpu0 = processCpuSeconds(child.pid!);
    const threads0 = threadCpuSeconds(child.pid!);
    const clientCpu0 = process.cpuUsage();
    const load = await runLoad(target, clients, total);
    const serverCpu = processCpuSeconds(child.pid!) - serverCpu0;
    const threads = [...threadCpuSeconds(child.pid!)].map(
      ([name, sec]) => [name, sec - (threads0.get(name) ?? 0)] as const,
    );
    log(
      `server CPU by thread (us per grant): ${threads
        .filter(([, sec]) => sec > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([name, sec]) => `${name} ${Math.round((sec / total) * 1e6)}`)
        .join(', ')}`,
    );
    const clientCpuUsage = process.cpuUsage(clientCpu0);
    const clientCpu = (clientCpuUsage.user + clientCpuUsage.system) / 1e6;
    const latencies = Array.from(load.latencies).sort((a, b) => a - b);
    const grantsPerS = total / load.seconds;

    const jwksRes = await fetch(new URL('/.well-known/jwks.json', url));
    const keySet = createKeySet(await jwksRes.json());
    if (!keySet.ok) throw new Error('JWKS invalid');
    const opts = { jwks: keySet.keySet, audience: 'drv1', verifyProgram: bpfProgramVerifier };
    const verifications = quick ? 200 : 40_000;
    log(`verifying ${verifications} grants (${issued.length} distinct, as issued)`);
    const v0 = performance.now();
    for (let i = 0; i < verifications; i++) {
      const grant = issued[i % issued.length]!;
      if (!verifyGrant(grant, opts).ok) throw new Error('an issued grant does not verify');
    }
    const verifyPerS = verifications / ((performance.now() - v0) / 1000);
    const result = {
      grants_per_s: Math.round(grantsPerS),
      p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      verify_per_s: Math.round(verifyPerS),
      concurrency,
      grants: total,
      ed25519: ED25519_BACKEND,
      // CPU per grant during the load (all threads of each process): the figure a shared machine distorts least.
      server_cpu_us_per_grant: Math.round((serverCpu / total) * 1e6),
      client_cpu_us_per_grant: Math.round((clientCpu / total) * 1e6),
    };
    log(
      `grants/s ${result.grants_per_s}, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, verifications/s ${result.verify_per_s}, ` +
        `CPU per grant: server ${result.server_cpu_us_per_grant} us, client ${result.client_cpu_us_per_grant} us`,
    );
    return result;
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
