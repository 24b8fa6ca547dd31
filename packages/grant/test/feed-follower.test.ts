/**
 * The revocation-feed follower against fake replicas (real HTTP on loopback, lists signed with the grant
 * package): push and pull, failover with resume from the last sequence, refusal of lists that do not
 * verify, gaps, and staleness.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { extractList, FeedFollower } from '../src/feed-follower.ts';
import { jwksDocument } from '../src/jwks.ts';
import { generateSigningKey } from '../src/keys.ts';
import { type RevocationListEntry, signRevocationList } from '../src/revocation.ts';

const key = generateSigningKey('k1');
const rogue = generateSigningKey('k1');
const jwks = jwksDocument([key]);
const now = () => Math.floor(Date.now() / 1000);

/** The cluster-wide log all fake replicas serve (like etcd behind real replicas). */
class Log {
  entries: RevocationListEntry[] = [];
  seq = 0;
  revoke(value: string): RevocationListEntry {
    this.seq += 1 + Math.floor(Math.random() * 3); // sparse, like etcd revisions
    const e = { seq: this.seq, kind: 'jti' as const, value, at: now(), until: now() + 600 };
    this.entries.push(e);
    return e;
  }
}

interface FakeReplica {
  url: string;
  server: Server;
  streams: Set<ServerResponse>;
  validSec: number;
  signer: typeof key;
  /** Stop answering pulls with 200 (503 instead). */
  down: boolean;
  /** Send every stream event with this `after` (to simulate a gap). */
  push(after?: number): void;
  close(): Promise<void>;
}

function list(log: Log, after: number, replica: { validSec: number; signer: typeof key }) {
  return signRevocationList(
    {
      iss: 'exonet-test',
      seq: log.seq,
      after,
      iat: now(),
      valid_until: now() + replica.validSec,
      entries: log.entries.filter((e) => e.seq > after),
    },
    replica.signer,
  );
}

async function fakeReplica(log: Log): Promise<FakeReplica> {
  const streams = new Set<ServerResponse>();
  const lastSent = new Map<ServerResponse, number>();
  const r: FakeReplica = {
    url: '',
    server: createServer((req: IncomingMessage, res: ServerResponse) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (r.down) {
        res.writeHead(503).end();
        return;
      }
      if (u.pathname === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
      } else if (u.pathname === '/v1/revocations') {
        const after = Number(u.searchParams.get('after') ?? '0');
        res.writeHead(200, { 'content-type': 'application/jwt' }).end(list(log, Math.min(after, log.seq), r));
      } else if (u.pathname === '/v1/revocations/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        streams.add(res);
        lastSent.set(res, log.seq);
        req.on('close', () => streams.delete(res));
      } else res.writeHead(404).end();
    }),
    streams,
    validSec: 60,
    signer: key,
    down: false,
    push(after?: number) {
      for (const s of streams) {
        const from = after ?? lastSent.get(s) ?? 0;
        s.write(`event: revocations\ndata: ${JSON.stringify({ list: list(log, from, r) })}\n\n`);
        lastSent.set(s, log.seq);
      }
    },
    async close() {
      for (const s of streams) s.destroy();
      r.server.closeAllConnections();
      await new Promise<void>((resolve) => r.server.close(() => resolve()));
    },
  };
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  return r;
}

async function waitFor(check: () => boolean, timeoutMs = 20_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(n: number, options: Partial<ConstructorParameters<typeof FeedFollower>[0]> = {}) {
  const log = new Log();
  const replicas: FakeReplica[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fakeReplica(log);
    replicas.push(r);
    cleanups.push(() => r.close());
  }
  const seen: RevocationListEntry[] = [];
  const errors: string[] = [];
  const follower = new FeedFollower({
    urls: replicas.map((r) => r.url),
    issuer: 'exonet-test',
    refreshMs: 200,
    retryMinMs: 20,
    retryMaxMs: 200,
    onEntries: (entries) => seen.push(...entries),
    onError: (e) => errors.push(`${e.code} ${e.message}`),
    ...options,
  });
  cleanups.push(() => follower.close());
  return { log, replicas, follower, seen, errors };
}

describe('FeedFollower', () => {
  it('pulls the backlog, then receives pushed lists, each entry once and in order', async () => {
    const { log, replicas, follower, seen } = await setup(1);
    log.revoke('a');
    log.revoke('b');
    follower.start();
    await waitFor(() => follower.lastSeq === log.seq, 20_000, 'backlog');
    expect(follower.staleSince).toBeNull();
    await waitFor(() => replicas[0].streams.size === 1, 20_000, 'stream');
    const c = log.revoke('c');
    replicas[0].push();
    await waitFor(() => seen.length === 3, 20_000, 'pushed entry');
    expect(seen.map((e) => e.value)).toEqual(['a', 'b', 'c']);
    expect(follower.lastSeq).toBe(c.seq);
    expect(follower.revocations.isRevoked({ jti: 'c', sub: 's', rule: 'r', iat: now() } as never, 'k1')).toBe(true);
  });

  it('moves to another replica when its replica dies and resumes without missing an entry', async () => {
    const { log, replicas, follower, seen } = await setup(3);
    follower.start();
    await waitFor(() => follower.currentUrl !== null && follower.lastVerifiedAt > 0, 20_000, 'first list');
    for (let round = 0; round < 3; round++) {
      const current = replicas.find((r) => r.url === follower.currentUrl)!;
      // Revocations accepted while the followed replica is failing reach the follower via another one.
      current.down = true;
      for (const s of current.streams) s.destroy();
      log.revoke(`r${round}-1`);
      log.revoke(`r${round}-2`);
      await waitFor(() => follower.lastSeq === log.seq, 20_000, `resume round ${round}`);
      expect(follower.currentUrl).not.toBe(current.url);
      current.down = false;
    }
    expect(seen.map((e) => e.value)).toEqual(log.entries.map((e) => e.value));
  });

  it('refuses lists that do not verify and follows an honest replica instead', async () => {
    const { log, replicas, follower, seen, errors } = await setup(2);
    replicas[0].signer = rogue; // same kid, wrong key: a forged list
    log.revoke('x');
    follower.start();
    await waitFor(() => follower.lastSeq === log.seq, 20_000, 'honest list');
    expect(follower.currentUrl).toBe(replicas[1].url);
    expect(errors.some((e) => e.startsWith('EXO_ERR_FEED_INVALID'))).toBe(true);
    expect(seen.map((e) => e.value)).toEqual(['x']);
  });

  it('pulls instead of applying a pushed list that leaves a gap', async () => {
    const { log, replicas, follower, seen } = await setup(1, { refreshMs: 60_000 });
    follower.start();
    await waitFor(() => replicas[0].streams.size === 1 && follower.lastVerifiedAt > 0, 20_000, 'stream');
    log.revoke('g1');
    const g2 = log.revoke('g2');
    replicas[0].push(g2.seq - 1); // claims to start after g1's seq: a gap for the follower
    await waitFor(() => seen.length === 2, 20_000, 'gap filled');
    expect(seen.map((e) => e.value)).toEqual(['g1', 'g2']);
  });

  it('reports stale when no replica answers beyond the bound, and fresh again after', async () => {
    const stale: number[] = [];
    let freshAgain = 0;
    const { replicas, follower } = await setup(2, {
      stalenessBoundMs: 600,
      onStale: (since) => stale.push(since),
      onFresh: () => freshAgain++,
    });
    expect(follower.isFresh()).toBe(false);
    follower.start();
    await waitFor(() => follower.isFresh(), 20_000, 'fresh');
    const freshAt = follower.lastVerifiedAt;
    for (const r of replicas) {
      r.down = true;
      for (const s of r.streams) s.destroy();
    }
    await waitFor(() => follower.staleSince !== null, 20_000, 'stale');
    expect(follower.staleSince! - freshAt).toBeGreaterThanOrEqual(0);
    expect(stale.length).toBeGreaterThan(0);
    for (const r of replicas) r.down = false;
    await waitFor(() => follower.staleSince === null, 20_000, 'fresh again');
    expect(freshAgain).toBeGreaterThan(0);
  });

  it('reads the list out of the answer shapes a replica may use', () => {
    expect(extractList('a.b.c')).toBe('a.b.c');
    expect(extractList('{"list":"a.b.c"}')).toBe('a.b.c');
    expect(extractList('"a.b.c"')).toBe('a.b.c');
    expect(extractList('<html>')).toBeUndefined();
    expect(extractList('{"nope":1}')).toBeUndefined();
  });
});
