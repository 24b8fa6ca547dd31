/**
 * The embedded store: one SQLite file (better-sqlite3 12) in WAL mode with synchronous=FULL, so a write is on
 * disk when its transaction commits. Writes are queued and committed in batches (group commit): the writes
 * issued while the previous batch commits share one transaction and one fsync, and each promise resolves
 * only after that commit, so acknowledged writes survive kill -9 while throughput stays high.
 *
 * The writing connection lives in a worker thread (sqlite-worker.ts): the commit's fsync would otherwise stop
 * the server's event loop for every batch. Reads use a second connection on this thread; in WAL mode a read
 * sees every commit that completed before it started, so a write's effects are visible once it is
 * acknowledged. `:memory:` databases (tests only) cannot be shared between connections and write in-thread.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { spawnWorker } from '@exonet/ipc';
import {
  commitBatch,
  type Db,
  errorOf,
  openDatabase,
  prepare,
  type WriteOp,
  type WriteResult,
  type Writer,
  writerFor,
} from './sqlite-ops.ts';
import type { FromWriter, ToWriter } from './sqlite-worker.ts';
import type {
  AuditContext,
  AuditRecord,
  GrantRecord,
  IssueResult,
  PolicyInput,
  PolicyKind,
  PolicyObjects,
  PutResult,
  RevocationEntry,
  RevocationInput,
  SigningKeyRecord,
  Store,
  TokenRecord,
  Unsubscribe,
} from './store.ts';

interface Pending {
  readonly op: WriteOp;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  /** Runs after the whole batch is acknowledged (e.g. notifying watchers). */
  readonly after?: (value: unknown) => void;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * Commit gathering: under load (the previous write arrived less than BUSY_MS before this one) a batch that
 * would hold fewer than GATHER_TARGET writes waits up to GATHER_MS for more. A commit costs about the same
 * (WAL pages, fsync) whether it holds 1 or 30 grants, and on a 2-core machine that CPU is taken from request
 * handling: a fuller batch about halves the store's CPU per grant. An occasional write (none in the BUSY_MS
 * before it) never waits. Durability is unchanged: a write is acknowledged only after its commit.
 */
const GATHER_MS = 1;
const GATHER_TARGET = 16;
const BUSY_MS = 5;
const closedError = () => new Error('EXO_ERR_STORE_CLOSED: the store is not open');

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** File path, or `:memory:` (tests only: nothing survives). */
  readonly path: string;
  /**
   * Seconds an expired grant's record is kept (default one day, as the etcd store): then it is deleted; the
   * audit log keeps its issue and revocation for good.
   */
  readonly grantRetentionSec?: number;
  /** How often expired claims and old grant and revocation records are collected (default a minute). */
  readonly gcIntervalMs?: number;
}

/** SQLite implementation of {@link Store}. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly #path: string;
  /** The reading connection (also the writing one for `:memory:`). */
  #db: Db | undefined;
  /** In-thread writer (`:memory:` only). */
  #local: Writer | undefined;
  /** The writer thread (files). */
  #worker: Worker | undefined;
  /** The port the writer thread posts batch outcomes on (see #pollWriter). */
  #results: MessagePort | undefined;
  #queue: Pending[] = [];
  /** The batch the writer thread is committing. */
  #inflight: Pending[] | undefined;
  #nextBatch = 1;
  #scheduled = false;
  /** When the latest write was queued, and whether the one before it came within BUSY_MS (then gather). */
  #lastWriteAt = 0;
  #busy = false;
  #gatherTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #idle: (() => void)[] = [];
  #lastGc = 0;
  readonly #retentionSec: number;
  readonly #gcIntervalSec: number;
  readonly #events = new EventEmitter();
  #stmts: ReturnType<typeof prepare> | undefined;

  constructor(options: SqliteStoreOptions) {
    this.#path = options.path;
    this.#retentionSec = options.grantRetentionSec ?? 86_400;
    this.#gcIntervalSec = (options.gcIntervalMs ?? 60_000) / 1000;
    this.#events.setMaxListeners(0);
  }

  async open(): Promise<void> {
    if (this.#db) return;
    // Migrations run here, before the writer thread opens the file.
    const db = openDatabase(this.#path);
    if (this.#path === ':memory:') this.#local = writerFor(db);
    else {
      try {
        const started = await startWriter(this.#path);
        this.#worker = started.worker;
        this.#results = started.results;
      } catch (err) {
        db.close();
        throw err;
      }
      this.#results.on('message', (m: FromWriter) => this.#onWriter(m));
      this.#results.unref();
      this.#worker.on('message', (m: FromWriter) => this.#onWriter(m));
      this.#worker.on('error', (err) => this.#writerLost(err));
      this.#worker.on('exit', () =>
        this.#writerLost(new Error('EXO_ERR_STORE_CLOSED: the SQLite writer thread exited')),
      );
    }
    this.#db = db;
    this.#stmts = prepare(db);
    // The first periodic collection comes one interval after opening.
    this.#lastGc = now();
  }

  close(): Promise<void> {
    if (!this.#db) return Promise.resolve();
    this.#closing ??= (async () => {
      // Writes queued before close still commit and are acknowledged; later ones are refused (#write).
      this.#flush();
      while (this.#inflight || this.#queue.length > 0) await new Promise<void>((r) => this.#idle.push(r));
      const worker = this.#worker;
      if (worker) {
        this.#worker = undefined;
        const exited = new Promise((r) => worker.once('exit', r));
        worker.ref();
        worker.postMessage({ close: true } satisfies ToWriter);
        await exited;
      }
      this.#db?.close();
      this.#db = undefined;
      this.#local = undefined;
      this.#stmts = undefined;
      this.#closing = undefined;
      this.#events.emit('closed');
      this.#events.removeAllListeners();
    })();
    return this.#closing;
  }

  async ping(): Promise<void> {
    this.#s().ping.get();
  }

  /**
   * Deletes revocation records an hour past their `until` (no grant they match can still be valid) and grant
   * records expired more than the retention ago, as the etcd store does. Runs on its own with the writes
   * (see `gcIntervalMs`); resolves with how many were deleted.
   */
  collectGarbage(now = Math.floor(Date.now() / 1000)): Promise<{ revocations: number; grants: number }> {
    return this.#write({ op: 'collectGarbage', now, retentionSec: this.#retentionSec });
  }

  #s(): ReturnType<typeof prepare> {
    if (!this.#stmts) throw closedError();
    return this.#stmts;
  }

  /** Queues a write for the next group commit; resolves once it is durable. */
  #write<T>(op: WriteOp, after?: (value: T) => void): Promise<T> {
    if (!this.#db || this.#closing || (!this.#local && !this.#worker)) return Promise.reject(closedError());
    const at = performance.now();
    this.#busy = at - this.#lastWriteAt < BUSY_MS;
    this.#lastWriteAt = at;
    if (this.#inflight) this.#pollWriter();
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        op,
        resolve: resolve as (v: unknown) => void,
        reject,
        after: after as ((v: unknown) => void) | undefined,
      });
      if (this.#gatherTimer && this.#queue.length >= GATHER_TARGET) {
        clearTimeout(this.#gatherTimer);
        this.#gatherTimer = undefined;
        this.#flush(true);
      } else if (!this.#scheduled && !this.#inflight && !this.#gatherTimer) {
        this.#scheduled = true;
        // Collect the writes of this event-loop turn into one batch.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(gathered = false): void {
    this.#scheduled = false;
    if (this.#inflight || this.#queue.length === 0 || this.#gatherTimer) return;
    if (!gathered && !this.#closing && this.#busy && this.#queue.length < GATHER_TARGET) {
      this.#gatherTimer = setTimeout(() => {
        this.#gatherTimer = undefined;
        this.#flush(true);
      }, GATHER_MS);
      return;
    }
    const batch = this.#queue;
    this.#queue = [];
    const nowSec = now();
    if (nowSec - this.#lastGc >= this.#gcIntervalSec) {
      // With the writes: expired claims (they never block, the checks compare exp; this keeps the table
      // small), and records that can no longer matter (see collectGarbage).
      this.#lastGc = nowSec;
      const op: WriteOp = { op: 'collectGarbage', now: nowSec, retentionSec: this.#retentionSec };
      batch.push({ op, resolve: () => {}, reject: () => {} });
    }
    const ops = batch.map((p) => p.op);
    if (this.#local) {
      let results: WriteResult[];
      try {
        results = commitBatch(this.#local, ops);
      } catch (err) {
        for (const p of batch) p.reject(err);
        this.#settled();
        return;
      }
      this.#acknowledge(batch, results);
      this.#settled();
      return;
    }
    const worker = this.#worker;
    if (!worker) {
      for (const p of batch) p.reject(closedError());
      this.#settled();
      return;
    }
    this.#inflight = batch;
    // Keep the process alive while a commit is pending (an idle store must not).
    worker.ref();
    // As one JSON text: every write is plain JSON data, and one string crosses the thread boundary for less
    // CPU on both sides than the structured clone of each write's object graph.
    worker.postMessage({ id: this.#nextBatch++, batch: JSON.stringify(ops) } satisfies ToWriter);
  }

  /**
   * Takes the writer's outcome now if it is there. Under load the event loop runs a long train of request
   * callbacks before it reaches the port's message; called between them, this acknowledges a durable batch
   * (and sends the next) without waiting for the train to end.
   */
  #pollWriter(): void {
    const m = this.#results && receiveMessageOnPort(this.#results);
    if (m) this.#onWriter(m.message as FromWriter);
  }

  #onWriter(m: FromWriter): void {
    if (!('id' in m)) return;
    const batch = this.#inflight ?? [];
    this.#inflight = undefined;
    this.#worker?.unref();
    if ('results' in m) this.#acknowledge(batch, m.results);
    else for (const p of batch) p.reject(errorOf(m.failed));
    // The writes that arrived during this commit form the next batch at once.
    this.#flush();
    this.#settled();
  }

  /** Committed (and fsynced): acknowledge, then run the after-commit work. */
  #acknowledge(batch: readonly Pending[], results: readonly WriteResult[]): void {
    batch.forEach((p, i) => {
      const r = results[i];
      if (r?.ok) p.resolve(r.value);
      else p.reject(r ? errorOf(r.error) : closedError());
    });
    batch.forEach((p, i) => {
      const r = results[i];
      if (r?.ok) p.after?.(r.value);
    });
  }

  #settled(): void {
    if (this.#inflight || this.#queue.length > 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const r of idle) r();
  }

  /** The writer thread died: nothing in flight can be acknowledged, and no write will be. */
  #writerLost(err: unknown): void {
    if (!this.#worker) return;
    this.#worker = undefined;
    const lost = [...(this.#inflight ?? []), ...this.#queue];
    this.#inflight = undefined;
    this.#queue = [];
    const e = err instanceof Error && err.message.startsWith('EXO_ERR_STORE_CLOSED') ? err : closedError();
    for (const p of lost) p.reject(e);
    this.#settled();
  }

  // --- policy ---

  async list<K extends PolicyKind>(kind: K): Promise<PolicyObjects[K][]> {
    return (this.#s().policyList.all(kind) as { body: string; version: number }[]).map(
      (r) => ({ ...JSON.parse(r.body), version: r.version }) as PolicyObjects[K],
    );
  }

  async get<K extends PolicyKind>(kind: K, id: string): Promise<PolicyObjects[K] | undefined> {
    const r = this.#s().policyGet.get(kind, id) as { body: string; version: number } | undefined;
    return r ? ({ ...JSON.parse(r.body), version: r.version } as PolicyObjects[K]) : undefined;
  }

  put<K extends PolicyKind>(
    kind: K,
    value: PolicyInput<K>,
    ctx: AuditContext,
    ifVersion?: number,
  ): Promise<PutResult<PolicyObjects[K]>> {
    const { version: _ignored, ...body } = value as PolicyInput<K> & { version?: number };
    return this.#write({ op: 'put', kind, body, ifVersion, ctx });
  }

  delete(kind: PolicyKind, id: string, ctx: AuditContext): Promise<boolean> {
    return this.#write({ op: 'delete', kind, id, ctx });
  }

  // --- tokens ---

  addToken(token: TokenRecord, ctx: AuditContext): Promise<void> {
    return this.#write({ op: 'addToken', token, ctx });
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const r = this.#s().tokenFind.get(hash) as { hash: string; principal: string; created_at: number } | undefined;
    return r ? { hash: r.hash, principal: r.principal, createdAt: r.created_at } : undefined;
  }

  deleteTokens(principal: string, ctx: AuditContext): Promise<number> {
    return this.#write({ op: 'deleteTokens', principal, ctx });
  }

  // --- keys ---

  async listKeys(): Promise<SigningKeyRecord[]> {
    return (this.#s().keyList.all() as KeyRow[]).map(keyFromRow);
  }

  addKey(key: SigningKeyRecord, ctx: AuditContext): Promise<void> {
    return this.#write({ op: 'addKey', key, ctx });
  }

  activateKey(kid: string, at: number, ctx: AuditContext): Promise<void> {
    return this.#write({ op: 'activateKey', kid, at, ctx });
  }

  deleteKey(kid: string, ctx: AuditContext): Promise<boolean> {
    return this.#write({ op: 'deleteKey', kid, ctx });
  }

  // --- grants ---

  issueGrant(grant: GrantRecord, at: number, ctx: AuditContext): Promise<IssueResult> {
    return this.#write({ op: 'issueGrant', grant, at, ctx });
  }

  async getGrant(jti: string): Promise<GrantRecord | undefined> {
    const r = this.#s().grantGet.get(jti) as { body: string; revoked_seq: number | null } | undefined;
    return r ? { ...JSON.parse(r.body), revokedSeq: r.revoked_seq } : undefined;
  }

  async listGrants(filter: { sub?: string; liveAt?: number; limit?: number }): Promise<GrantRecord[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const rows = this.#s().grantList.all({
      sub: filter.sub ?? null,
      live: filter.liveAt ?? null,
      limit,
    }) as { body: string; revoked_seq: number | null }[];
    return rows.map((r) => ({ ...JSON.parse(r.body), revokedSeq: r.revoked_seq }));
  }

  // --- revocations ---

  // --- revocations ---

  revoke(input: RevocationInput, ctx: AuditContext): Promise<RevocationEntry> {
    return this.#write<RevocationEntry>({ op: 'revoke', input, ctx }, (entry) =>
      this.#events.emit('revocation', entry),
    );
  }

  async listRevocations(after: number): Promise<{ head: number; entries: RevocationEntry[] }> {
    const s = this.#s();
    const entries = (s.revocationsAfter.all(after) as RevocationEntry[]).map((e) => ({ ...e }));
    const head = (s.revocationHead.get() as { head: number | null }).head ?? 0;
    return { head, entries };
  }

  watchRevocations(
    after: number,
    onEntry: (entry: RevocationEntry) => void,
    onError?: (err: Error) => void,
  ): Unsubscribe {
    let last = after;
    const deliver = (e: RevocationEntry) => {
      if (e.seq <= last) return;
      last = e.seq;
      onEntry(e);
    };
    const onClosed = () => onError?.(new Error('EXO_ERR_STORE_CLOSED: the store was closed'));
    this.#events.on('revocation', deliver);
    this.#events.on('closed', onClosed);
    // better-sqlite3 is synchronous: the backlog read and the subscription above cannot interleave with a commit.
    try {
      for (const e of this.#s().revocationsAfter.all(after) as RevocationEntry[]) deliver({ ...e });
    } catch (err) {
      queueMicrotask(() => onError?.(err as Error));
    }
    return () => {
      this.#events.off('revocation', deliver);
      this.#events.off('closed', onClosed);
    };
  }

  // --- audit ---

  async listAudit(after: number, limit: number): Promise<AuditRecord[]> {
    const rows = this.#s().auditList.all(after, Math.min(Math.max(limit, 1), 1000)) as {
      seq: number;
      at: number;
      actor: string;
      request_id: string | null;
      action: string;
      subject: string;
      detail: string;
    }[];
    return rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      actor: r.actor,
      requestId: r.request_id,
      action: r.action,
      subject: r.subject,
      detail: JSON.parse(r.detail),
    }));
  }
}

interface KeyRow {
  kid: string;
  state: SigningKeyRecord['state'];
  public_jwk: string;
  sealed_private_key: string;
  created_at: number;
  activated_at: number | null;
  retired_at: number | null;
  last_grant_exp: number;
}

function keyFromRow(r: KeyRow): SigningKeyRecord {
  return {
    kid: r.kid,
    state: r.state,
    publicJwk: JSON.parse(r.public_jwk),
    sealedPrivateKey: r.sealed_private_key,
    createdAt: r.created_at,
    activatedAt: r.activated_at,
    retiredAt: r.retired_at,
    lastGrantExp: r.last_grant_exp,
  };
}

/** Starts the writer thread and waits until it has opened the database. */
async function startWriter(path: string): Promise<{ worker: Worker; results: MessagePort }> {
  const channel = new MessageChannel();
  const worker = spawnWorker(new URL('./sqlite-worker.ts', import.meta.url), {
    workerData: { path, results: channel.port2 },
    transferList: [channel.port2],
  });
  let onMessage: ((m: FromWriter) => void) | undefined;
  let onError: ((err: Error) => void) | undefined;
  let onExit: ((code: number) => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onMessage = (m) =>
        'ready' in m && m.ready
          ? resolve()
          : reject(new Error(`SQLite writer: ${'message' in m ? m.message : 'failed'}`));
      onError = reject;
      onExit = (code) => reject(new Error(`SQLite writer thread exited (${code})`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    });
  } catch (err) {
    await worker.terminate();
    throw err;
  } finally {
    // Only these listeners: removeAllListeners would also drop the Worker's own.
    worker.off('message', onMessage!).off('error', onError!).off('exit', onExit!);
  }
  worker.unref();
  return { worker, results: channel.port1 };
}
