/**
 * `exonet bench revocation`: how long a revocation accepted by one permission-server replica takes to be
 * applied by drivers following other replicas. A real 3-member etcd cluster on loopback (temporary, started
 * and removed by the benchmark), three replicas with real HTTP listeners over it, and one revocation-feed
 * follower (what a driver runs; it verifies every signed list) per replica. Revocations are posted one at a
 * time to replica 0 over HTTP; for each, the latency is the time until the LAST follower applied it.
 *
 * JSON: `drivers`, `p50_ms`, `p99_ms`: from the moment replica 0 has the revocation committed in etcd (the
 * accept point: durable and numbered) until the last follower applied it. Also `from_answer_*` (from the
 * 201 reaching the client, 0 when every follower was faster: the replica marks grants and updates its own
 * feed before answering) and `from_request_*` (from sending the request, including the etcd commit).
 */
import { randomBytes } from 'node:crypto';
import { FeedFollower, type RevocationListEntry } from '@exonet/grant';
import { generateToken } from '../auth.ts';
import { type PermissionServer, startPermissionServer } from '../server.ts';
import { EtcdStore } from '../store/etcd.ts';
import { EtcdCluster } from '../store/etcd-local-cluster.ts';

/** Options every benchmark receives (see packages/cli/src/bench.ts). */
export interface BenchmarkOptions {
  readonly quick: boolean;
  readonly log: (line: string) => void;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export async function run({ quick, log }: BenchmarkOptions): Promise<Record<string, unknown>> {
  const count = quick ? 20 : 200;
  const replicaCount = 3;
  const issuer = 'exonet-bench';
  const admin = generateToken();
  const kek = new Uint8Array(randomBytes(32));
  const prefix = `/exonet-bench-${randomBytes(4).toString('hex')}/`;
  log(`starting a 3-member etcd cluster and ${replicaCount} replicas`);
  const cluster = await EtcdCluster.start();
  const servers: PermissionServer[] = [];
  /** seq -> when replica 0 had it committed. */
  const committedAt = new Map<number, number>();
  const followers: FeedFollower[] = [];
  try {
    for (let i = 0; i < replicaCount; i++) {
      servers.push(
        await startPermissionServer({
          store: new EtcdStore({
            endpoints: cluster.endpoints,
            prefix,
            onRevocationCommitted: (e) => committedAt.set(e.seq, performance.now()),
          }),
          listen: '127.0.0.1:0',
          issuer,
          kek,
          adminToken: admin,
          logger: false,
          rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
        }),
      );
    }
    // seq -> followers that still have to apply it, and who waits for that.
    const pending = new Map<number, { left: number; done: (at: number) => void }>();
    const appliedEarly = new Map<number, number>();
    const applied = (entries: readonly RevocationListEntry[]) => {
      const now = performance.now();
      for (const e of entries) {
        const p = pending.get(e.seq);
        if (p) {
          if (--p.left === 0) p.done(now);
        } else appliedEarly.set(e.seq, (appliedEarly.get(e.seq) ?? 0) + 1);
      }
    };
    for (let i = 0; i < replicaCount; i++) {
      const urls = servers.map((s) => s.url);
      const f = new FeedFollower({
        urls: [...urls.slice(i), ...urls.slice(0, i)],
        issuer,
        refreshMs: 5000,
        onEntries: applied,
      });
      followers.push(f);
      f.start();
    }
    const fresh = Date.now() + 30_000;
    while (!followers.every((f) => f.isFresh())) {
      if (Date.now() > fresh) throw new Error('followers did not receive a first list within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    log(`${followers.length} followers on ${replicaCount} replicas; ${count} revocations to replica 0`);

    const fromCommit: number[] = [];
    const fromAnswer: number[] = [];
    const fromRequest: number[] = [];
    for (let i = 0; i < count; i++) {
      const sent = performance.now();
      const res = await fetch(`${servers[0].url}/v1/revocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ kind: 'jti', value: `bench-${i}-${randomBytes(4).toString('hex')}`, reason: 'bench' }),
      });
      const body = (await res.json()) as { seq?: number };
      const answered = performance.now();
      if (res.status !== 201 || typeof body.seq !== 'number') throw new Error(`revocation refused: ${res.status}`);
      const seq = body.seq;
      const early = appliedEarly.get(seq) ?? 0;
      appliedEarly.delete(seq);
      let lastApplied: number;
      if (early >= followers.length) lastApplied = answered;
      else {
        lastApplied = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`seq ${seq} not applied within 30 s`)), 30_000);
          pending.set(seq, {
            left: followers.length - early,
            done: (at) => {
              clearTimeout(timer);
              pending.delete(seq);
              resolve(at);
            },
          });
        });
      }
      const committed = committedAt.get(seq);
      if (committed === undefined) throw new Error(`seq ${seq}: commit not observed`);
      committedAt.delete(seq);
      fromCommit.push(lastApplied - committed);
      fromAnswer.push(Math.max(0, lastApplied - answered));
      fromRequest.push(lastApplied - sent);
    }
    fromCommit.sort((a, b) => a - b);
    fromAnswer.sort((a, b) => a - b);
    fromRequest.sort((a, b) => a - b);
    const result = {
      drivers: followers.length,
      replicas: replicaCount,
      revocations: count,
      p50_ms: round2(percentile(fromCommit, 50)),
      p99_ms: round2(percentile(fromCommit, 99)),
      max_ms: round2(fromCommit[fromCommit.length - 1] ?? 0),
      from_answer_p50_ms: round2(percentile(fromAnswer, 50)),
      from_answer_p99_ms: round2(percentile(fromAnswer, 99)),
      from_request_p50_ms: round2(percentile(fromRequest, 50)),
      from_request_p99_ms: round2(percentile(fromRequest, 99)),
    };
    log(
      `revocation -> applied on all ${followers.length} followers: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms` +
        ` after the etcd commit (from the request: p50 ${result.from_request_p50_ms} ms, p99 ${result.from_request_p99_ms} ms)`,
    );
    return result;
  } finally {
    await Promise.allSettled(followers.map((f) => f.close()));
    for (const s of servers) {
      const cut = setTimeout(() => s.app.server.closeAllConnections(), 1000);
      await s.close().catch(() => {});
      clearTimeout(cut);
    }
    await cluster.stop();
  }
}
