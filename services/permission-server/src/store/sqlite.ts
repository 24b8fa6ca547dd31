/**
 * The embedded store: one SQLite file (better-sqlite3 12) in WAL mode with synchronous=FULL, so a write is on
 * disk when its transaction commits. Writes are queued and committed in batches (group commit): every write
 * issued in the same event-loop turn shares one transaction and one fsync, and each promise resolves only
 * after that commit, so acknowledged writes survive kill -9 while throughput stays high.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from './migrations.ts';
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

type Db = Database.Database;

/** Registers work to run after the batch containing the write has committed (e.g. notifying watchers). */
type AfterCommit = (fn: () => void) => void;

interface Pending {
  readonly op: (afterCommit: AfterCommit) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

const now = () => Math.floor(Date.now() / 1000);

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** File path, or `:memory:` (tests only: nothing survives). */
  readonly path: string;
}

/** SQLite implementation of {@link Store}. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly #path: string;
  #db: Db | undefined;
  #queue: Pending[] = [];
  #scheduled = false;
  #lastCleanup = 0;
  readonly #events = new EventEmitter();
  #stmts: ReturnType<typeof prepare> | undefined;

  constructor(options: SqliteStoreOptions) {
    this.#path = options.path;
    this.#events.setMaxListeners(0);
  }

  async open(): Promise<void> {
    if (this.#db) return;
    if (this.#path !== ':memory:') mkdirSync(dirname(this.#path), { recursive: true });
    const db = new Database(this.#path);
    db.pragma('journal_mode = WAL');
    // FULL: the WAL is fsynced at every commit, which is what makes an acknowledged write survive a crash.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const current = db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v < migrations.length; v++) {
      db.transaction(() => {
        db.exec(migrations[v]!);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
    this.#db = db;
    this.#stmts = prepare(db);
  }

  async close(): Promise<void> {
    if (!this.#db) return;
    this.#flush();
    this.#db.close();
    this.#db = undefined;
    this.#stmts = undefined;
    this.#events.emit('closed');
    this.#events.removeAllListeners();
  }

  async ping(): Promise<void> {
    this.#s().ping.get();
  }

  #s(): ReturnType<typeof prepare> {
    if (!this.#stmts) throw new Error('EXO_ERR_STORE_CLOSED: the store is not open');
    return this.#stmts;
  }

  /** Queues a write for the next group commit. */
  #write<T>(op: (afterCommit: AfterCommit) => T): Promise<T> {
    if (!this.#db) return Promise.reject(new Error('EXO_ERR_STORE_CLOSED: the store is not open'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0 || !this.#db) {
      for (const p of batch) p.reject(new Error('EXO_ERR_STORE_CLOSED: the store is not open'));
      return;
    }
    const db = this.#db;
    const nowSec = now();
    if (nowSec - this.#lastCleanup >= 60) {
      // Expired claims never block (the checks compare exp); drop them now and then to keep the table small.
      this.#lastCleanup = nowSec;
      batch.push({ op: () => this.#s().claimsExpire.run(nowSec - 60), resolve: () => {}, reject: () => {} });
    }
    const results: { ok: boolean; value: unknown }[] = [];
    const after: (() => void)[] = [];
    try {
      db.transaction(() => {
        for (const p of batch) {
          // Each operation in its own savepoint: one failing write does not undo the others in the batch.
          const mine: (() => void)[] = [];
          try {
            const value = db.transaction(() => p.op((fn) => mine.push(fn)))();
            results.push({ ok: true, value });
            after.push(...mine);
          } catch (err) {
            results.push({ ok: false, value: err });
          }
        }
      }).immediate();
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    // Committed (and fsynced): now acknowledge, then notify watchers.
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r.ok) p.resolve(r.value);
      else p.reject(r.value);
    });
    for (const fn of after) fn();
  }

  #audit(ctx: AuditContext, action: string, subject: string, detail: Record<string, unknown>): void {
    this.#s().audit.run(now(), ctx.actor, ctx.requestId ?? null, action, subject, JSON.stringify(detail));
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
    return this.#write(() => {
      const s = this.#s();
      const current = s.policyGet.get(kind, body.id) as { version: number } | undefined;
      if (ifVersion !== undefined && (current?.version ?? 0) !== ifVersion)
        return { ok: false, reason: 'version' } as const;
      const version = (current?.version ?? 0) + 1;
      s.policyPut.run(kind, body.id, JSON.stringify(body), version);
      this.#audit(ctx, `${kind}.put`, body.id, { version, value: body });
      return { ok: true, value: { ...body, version } as unknown as PolicyObjects[K] } as const;
    });
  }

  delete(kind: PolicyKind, id: string, ctx: AuditContext): Promise<boolean> {
    return this.#write(() => {
      const changes = this.#s().policyDelete.run(kind, id).changes;
      if (changes > 0) this.#audit(ctx, `${kind}.delete`, id, {});
      return changes > 0;
    });
  }

  // --- tokens ---

  addToken(token: TokenRecord, ctx: AuditContext): Promise<void> {
    return this.#write(() => {
      this.#s().tokenAdd.run(token.hash, token.principal, token.createdAt);
      // The hash prefix only: enough to correlate, useless to an attacker.
      this.#audit(ctx, 'token.add', token.principal, { hashPrefix: token.hash.slice(0, 8) });
    });
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const r = this.#s().tokenFind.get(hash) as { hash: string; principal: string; created_at: number } | undefined;
    return r ? { hash: r.hash, principal: r.principal, createdAt: r.created_at } : undefined;
  }

  deleteTokens(principal: string, ctx: AuditContext): Promise<number> {
    return this.#write(() => {
      const n = this.#s().tokenDelete.run(principal).changes;
      this.#audit(ctx, 'token.delete', principal, { count: n });
      return n;
    });
  }

  // --- keys ---

  async listKeys(): Promise<SigningKeyRecord[]> {
    return (this.#s().keyList.all() as KeyRow[]).map(keyFromRow);
  }

  addKey(key: SigningKeyRecord, ctx: AuditContext): Promise<void> {
    return this.#write(() => {
      this.#s().keyAdd.run(
        key.kid,
        key.state,
        JSON.stringify(key.publicJwk),
        key.sealedPrivateKey,
        key.createdAt,
        key.activatedAt,
        key.retiredAt,
        key.lastGrantExp,
      );
      this.#audit(ctx, 'key.add', key.kid, { state: key.state });
    });
  }

  activateKey(kid: string, at: number, ctx: AuditContext): Promise<void> {
    return this.#write(() => {
      const s = this.#s();
      if (!s.keyGet.get(kid)) throw new Error(`EXO_ERR_STORE_NOT_FOUND: no key ${kid}`);
      s.keyRetireActive.run(at, kid);
      s.keyActivate.run(at, kid);
      this.#audit(ctx, 'key.activate', kid, {});
    });
  }

  deleteKey(kid: string, ctx: AuditContext): Promise<boolean> {
    return this.#write(() => {
      const n = this.#s().keyDelete.run(kid).changes;
      if (n > 0) this.#audit(ctx, 'key.delete', kid, {});
      return n > 0;
    });
  }

  // --- grants ---

  issueGrant(grant: GrantRecord, at: number, ctx: AuditContext): Promise<IssueResult> {
    return this.#write((): IssueResult => {
      const s = this.#s();
      for (const claim of grant.claims) {
        // An exclusive claim conflicts with any live claim, a shared one only with a live exclusive claim.
        const conflict = (
          claim.mode === 'exclusive'
            ? s.claimAnyLive.get(claim.driver, claim.resource, at, grant.renewedFrom ?? '')
            : s.claimExclusiveLive.get(claim.driver, claim.resource, at, grant.renewedFrom ?? '')
        ) as { jti: string } | undefined;
        if (conflict)
          return { ok: false, reason: 'conflict', conflicting: { jti: conflict.jti, resource: claim.resource } };
      }
      s.grantInsert.run(
        grant.jti,
        grant.sub,
        grant.driver,
        grant.rule,
        grant.kid,
        grant.iat,
        grant.exp,
        null,
        JSON.stringify(grant),
      );
      for (const claim of grant.claims)
        s.claimInsert.run(claim.driver, claim.resource, grant.jti, claim.mode, grant.exp);
      s.keyRaiseExp.run(grant.exp, grant.kid);
      this.#audit(ctx, 'grant.issue', grant.jti, {
        sub: grant.sub,
        driver: grant.driver,
        rule: grant.rule,
        dir: grant.dir,
        exclusive: grant.exclusive,
        exp: grant.exp,
        renewedFrom: grant.renewedFrom,
      });
      return { ok: true };
    });
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

  revoke(input: RevocationInput, ctx: AuditContext): Promise<RevocationEntry> {
    return this.#write((afterCommit) => {
      const s = this.#s();
      const seq = Number(
        s.revocationInsert.run(input.kind, input.value, input.at, input.until, input.reason).lastInsertRowid,
      );
      const mark = {
        jti: s.revokeJti,
        sub: s.revokeSub,
        rule: s.revokeRule,
        kid: s.revokeKid,
      }[input.kind];
      const affected = mark.run({ seq, value: input.value, at: input.at }).changes;
      s.claimsRelease.run(seq);
      const entry: RevocationEntry = { ...input, seq };
      this.#audit(ctx, 'revocation.create', `${input.kind}:${input.value}`, { seq, affected, reason: input.reason });
      afterCommit(() => this.#events.emit('revocation', entry));
      return entry;
    });
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

function prepare(db: Db) {
  return {
    ping: db.prepare('SELECT 1'),
    audit: db.prepare('INSERT INTO audit (at, actor, request_id, action, subject, detail) VALUES (?, ?, ?, ?, ?, ?)'),
    auditList: db.prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?'),
    policyList: db.prepare('SELECT body, version FROM policy WHERE kind = ? ORDER BY id'),
    policyGet: db.prepare('SELECT body, version FROM policy WHERE kind = ? AND id = ?'),
    policyPut: db.prepare(
      'INSERT INTO policy (kind, id, body, version) VALUES (?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, version = excluded.version',
    ),
    policyDelete: db.prepare('DELETE FROM policy WHERE kind = ? AND id = ?'),
    tokenAdd: db.prepare('INSERT INTO tokens (hash, principal, created_at) VALUES (?, ?, ?)'),
    tokenFind: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
    tokenDelete: db.prepare('DELETE FROM tokens WHERE principal = ?'),
    keyList: db.prepare('SELECT * FROM signing_keys ORDER BY created_at, kid'),
    keyGet: db.prepare('SELECT kid FROM signing_keys WHERE kid = ?'),
    keyAdd: db.prepare(
      'INSERT INTO signing_keys (kid, state, public_jwk, sealed_private_key, created_at, activated_at, retired_at, last_grant_exp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    keyRetireActive: db.prepare(
      "UPDATE signing_keys SET state = 'retired', retired_at = ? WHERE state = 'active' AND kid != ?",
    ),
    keyActivate: db.prepare("UPDATE signing_keys SET state = 'active', activated_at = ? WHERE kid = ?"),
    keyDelete: db.prepare("DELETE FROM signing_keys WHERE kid = ? AND state = 'retired'"),
    keyRaiseExp: db.prepare('UPDATE signing_keys SET last_grant_exp = max(last_grant_exp, ?) WHERE kid = ?'),
    claimsExpire: db.prepare('DELETE FROM claims WHERE exp <= ?'),
    claimAnyLive: db.prepare(
      'SELECT jti FROM claims WHERE driver = ? AND resource = ? AND exp > ? AND jti != ? LIMIT 1',
    ),
    claimExclusiveLive: db.prepare(
      "SELECT jti FROM claims WHERE driver = ? AND resource = ? AND mode = 'exclusive' AND exp > ? AND jti != ? LIMIT 1",
    ),
    claimInsert: db.prepare('INSERT INTO claims (driver, resource, jti, mode, exp) VALUES (?, ?, ?, ?, ?)'),
    claimsRelease: db.prepare('DELETE FROM claims WHERE jti IN (SELECT jti FROM grants WHERE revoked_seq = ?)'),
    grantInsert: db.prepare(
      'INSERT INTO grants (jti, sub, driver, rule, kid, iat, exp, revoked_seq, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    grantGet: db.prepare('SELECT body, revoked_seq FROM grants WHERE jti = ?'),
    grantList: db.prepare(
      'SELECT body, revoked_seq FROM grants WHERE (@sub IS NULL OR sub = @sub) AND (@live IS NULL OR (exp > @live AND revoked_seq IS NULL)) ORDER BY iat DESC, jti LIMIT @limit',
    ),
    revocationInsert: db.prepare('INSERT INTO revocations (kind, value, at, until, reason) VALUES (?, ?, ?, ?, ?)'),
    revocationsAfter: db.prepare(
      'SELECT seq, kind, value, at, until, reason FROM revocations WHERE seq > ? ORDER BY seq',
    ),
    revocationHead: db.prepare('SELECT max(seq) AS head FROM revocations'),
    revokeJti: db.prepare(
      'UPDATE grants SET revoked_seq = @seq WHERE jti = @value AND revoked_seq IS NULL AND @at >= 0',
    ),
    revokeSub: db.prepare(
      'UPDATE grants SET revoked_seq = @seq WHERE sub = @value AND iat <= @at AND revoked_seq IS NULL',
    ),
    revokeRule: db.prepare(
      'UPDATE grants SET revoked_seq = @seq WHERE rule = @value AND iat <= @at AND revoked_seq IS NULL',
    ),
    revokeKid: db.prepare(
      'UPDATE grants SET revoked_seq = @seq WHERE kid = @value AND revoked_seq IS NULL AND @at >= 0',
    ),
  };
}
