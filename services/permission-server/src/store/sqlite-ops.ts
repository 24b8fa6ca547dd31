/**
 * The SQLite store's write side, shared by the writer thread (sqlite-worker.ts) and the in-thread fallback
 * used for `:memory:` databases: opening with the durability pragmas, the prepared statements, every write as
 * plain data (so it can cross a thread boundary), and the group commit of a batch of writes.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from './migrations.ts';
import type {
  AuditContext,
  GrantRecord,
  IssueResult,
  PolicyKind,
  RevocationEntry,
  RevocationInput,
  SigningKeyRecord,
  TokenRecord,
} from './store.ts';

export type Db = Database.Database;

const now = () => Math.floor(Date.now() / 1000);

/**
 * Opens (creating and migrating) a database. WAL with synchronous=FULL: the WAL is fsynced at every commit,
 * which is what makes an acknowledged write survive a crash.
 */
export function openDatabase(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // New databases only (an existing file keeps its page size): 2 KiB pages. Every commit rewrites the index
  // pages it touches into the WAL, and grant indexes touch one page per principal and per resource, so
  // smaller pages roughly halve the bytes written and fsynced per grant (measured: 21 to 10 KiB per grant,
  // with the claims key of migration 3 dropped).
  db.pragma('page_size = 2048');
  db.pragma('journal_mode = WAL');
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
  return db;
}

/** Every write of the store, as data. */
export type WriteOp =
  | {
      readonly op: 'put';
      readonly kind: PolicyKind;
      readonly body: { readonly id: string } & Record<string, unknown>;
      readonly ifVersion: number | undefined;
      readonly ctx: AuditContext;
    }
  | { readonly op: 'delete'; readonly kind: PolicyKind; readonly id: string; readonly ctx: AuditContext }
  | { readonly op: 'addToken'; readonly token: TokenRecord; readonly ctx: AuditContext }
  | { readonly op: 'deleteTokens'; readonly principal: string; readonly ctx: AuditContext }
  | { readonly op: 'addKey'; readonly key: SigningKeyRecord; readonly ctx: AuditContext }
  | { readonly op: 'activateKey'; readonly kid: string; readonly at: number; readonly ctx: AuditContext }
  | { readonly op: 'deleteKey'; readonly kid: string; readonly ctx: AuditContext }
  | { readonly op: 'issueGrant'; readonly grant: GrantRecord; readonly at: number; readonly ctx: AuditContext }
  | { readonly op: 'revoke'; readonly input: RevocationInput; readonly ctx: AuditContext }
  | { readonly op: 'collectGarbage'; readonly now: number; readonly retentionSec: number };

/** One write's outcome: its value, or its error flattened so it survives postMessage with name and code. */
export type WriteResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: { name: string; message: string; code?: string } };

type Statements = ReturnType<typeof prepare>;

/** Grant rows one garbage-collection round deletes at most (a backlog is worked off round by round). */
const GC_BATCH = 10_000;

function audit(s: Statements, ctx: AuditContext, action: string, subject: string, detail: Record<string, unknown>) {
  s.audit.run(now(), ctx.actor, ctx.requestId ?? null, action, subject, JSON.stringify(detail));
}

/**
 * Per-batch bookkeeping: the latest grant expiry per signing key, raised once per commit instead of one row
 * update per grant (the value only ever grows, so the batch's maximum is the same end state).
 */
type KeyExpiries = Map<string, number>;

/** Applies one write inside the current transaction. */
function apply(s: Statements, w: WriteOp, keyExp: KeyExpiries): unknown {
  switch (w.op) {
    case 'put': {
      const current = s.policyGet.get(w.kind, w.body.id) as { version: number } | undefined;
      if (w.ifVersion !== undefined && (current?.version ?? 0) !== w.ifVersion)
        return { ok: false, reason: 'version' } as const;
      const version = (current?.version ?? 0) + 1;
      s.policyPut.run(w.kind, w.body.id, JSON.stringify(w.body), version);
      audit(s, w.ctx, `${w.kind}.put`, w.body.id, { version, value: w.body });
      return { ok: true, value: { ...w.body, version } } as const;
    }
    case 'delete': {
      const changes = s.policyDelete.run(w.kind, w.id).changes;
      if (changes > 0) audit(s, w.ctx, `${w.kind}.delete`, w.id, {});
      return changes > 0;
    }
    case 'addToken':
      s.tokenAdd.run(w.token.hash, w.token.principal, w.token.createdAt);
      // The hash prefix only: enough to correlate, useless to an attacker.
      audit(s, w.ctx, 'token.add', w.token.principal, { hashPrefix: w.token.hash.slice(0, 8) });
      return undefined;
    case 'deleteTokens': {
      const n = s.tokenDelete.run(w.principal).changes;
      audit(s, w.ctx, 'token.delete', w.principal, { count: n });
      return n;
    }
    case 'addKey': {
      const k = w.key;
      s.keyAdd.run(
        k.kid,
        k.state,
        JSON.stringify(k.publicJwk),
        k.sealedPrivateKey,
        k.createdAt,
        k.activatedAt,
        k.retiredAt,
        k.lastGrantExp,
      );
      audit(s, w.ctx, 'key.add', k.kid, { state: k.state });
      return undefined;
    }
    case 'activateKey': {
      const found = s.keyGet.get(w.kid) as { state: string } | undefined;
      if (!found) throw new Error(`EXO_ERR_STORE_NOT_FOUND: no key ${w.kid}`);
      // Keys never go back from retired (as in the etcd store): a stale rotation must not revive an old key.
      if (found.state === 'retired') return undefined;
      s.keyRetireActive.run(w.at, w.kid);
      s.keyActivate.run(w.at, w.kid);
      audit(s, w.ctx, 'key.activate', w.kid, {});
      return undefined;
    }
    case 'deleteKey': {
      const n = s.keyDelete.run(w.kid).changes;
      if (n > 0) audit(s, w.ctx, 'key.delete', w.kid, {});
      return n > 0;
    }
    case 'issueGrant':
      return issueGrant(s, w.grant, w.at, w.ctx, keyExp);
    case 'revoke': {
      const input = w.input;
      const seq = Number(
        s.revocationInsert.run(input.kind, input.value, input.at, input.until, input.reason).lastInsertRowid,
      );
      const mark = { jti: s.revokeJti, sub: s.revokeSub, rule: s.revokeRule, kid: s.revokeKid }[input.kind];
      const affected = mark.run({ seq, value: input.value, at: input.at }).changes;
      s.claimsRelease.run(seq);
      audit(s, w.ctx, 'revocation.create', `${input.kind}:${input.value}`, { seq, affected, reason: input.reason });
      return { ...input, seq } satisfies RevocationEntry;
    }
    case 'collectGarbage': {
      // Claims of grants expired a minute ago: nothing checks them any more.
      s.claimsExpire.run(w.now - 60);
      // Revocation records an hour past their `until` match no grant that could still be valid.
      const revocations = s.revocationsCollect.run(w.now - 3600).changes;
      // Grant ids begin with their issue time (grantId), and a grant expires after it was issued: the rows to
      // look at are a range of the primary key (issued before the cutoff), not a scan of the table; `exp`
      // decides, and a round deletes at most GC_BATCH rows.
      const cutoff = w.now - w.retentionSec;
      const jtiBefore = `g_${(Math.max(0, cutoff) * 1000).toString(16).padStart(11, '0')}`;
      const grants = s.grantsCollect.run(jtiBefore, cutoff).changes;
      return { revocations, grants };
    }
  }
}

function issueGrant(
  s: Statements,
  grant: GrantRecord,
  at: number,
  ctx: AuditContext,
  keyExp: KeyExpiries,
): IssueResult {
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
  for (const claim of grant.claims) s.claimInsert.run(claim.driver, claim.resource, grant.jti, claim.mode, grant.exp);
  // Noted only once the grant's rows are written; commitBatch raises the key's last_grant_exp in the same
  // transaction, so it is durable exactly when the grant is.
  keyExp.set(grant.kid, Math.max(keyExp.get(grant.kid) ?? 0, grant.exp));
  audit(s, ctx, 'grant.issue', grant.jti, {
    sub: grant.sub,
    driver: grant.driver,
    rule: grant.rule,
    dir: grant.dir,
    exclusive: grant.exclusive,
    exp: grant.exp,
    renewedFrom: grant.renewedFrom,
  });
  return { ok: true };
}

function flatten(err: unknown): { name: string; message: string; code?: string } {
  const e = err as { name?: unknown; message?: unknown; code?: unknown };
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
}

/** Rebuilds an error flattened by a batch. */
export function errorOf(error: { name: string; message: string; code?: string }): Error {
  const err = new Error(error.message) as Error & { code?: string };
  err.name = error.name;
  if (error.code !== undefined) err.code = error.code;
  return err;
}

/** A writer: a connection and its statements. */
export interface Writer {
  readonly db: Db;
  readonly s: Statements;
}

export function writerFor(db: Db): Writer {
  return { db, s: prepare(db) };
}

/**
 * Group commit: all writes in one transaction and one fsync (synchronous=FULL), each in its own savepoint so
 * one failing write does not undo the others. Returns when the commit is durable; throws if the commit fails
 * (then none of the batch is acknowledged).
 */
export function commitBatch(w: Writer, batch: readonly WriteOp[]): WriteResult[] {
  const batchKeyExp: KeyExpiries = new Map();
  const results: WriteResult[] = [];
  w.db
    .transaction(() => {
      for (const op of batch) {
        // A write's key expiries count only when its savepoint is kept.
        const keyExp: KeyExpiries = new Map();
        try {
          results.push({ ok: true, value: w.db.transaction(() => apply(w.s, op, keyExp))() });
          for (const [kid, exp] of keyExp) batchKeyExp.set(kid, Math.max(batchKeyExp.get(kid) ?? 0, exp));
        } catch (err) {
          results.push({ ok: false, error: flatten(err) });
        }
      }
      for (const [kid, exp] of batchKeyExp) w.s.keyRaiseExp.run(exp, kid);
    })
    .immediate();
  return results;
}

export function prepare(db: Db) {
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
    keyGet: db.prepare('SELECT kid, state FROM signing_keys WHERE kid = ?'),
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
    // mode IN (both modes) lets the lookup seek claims_live per mode and range over exp.
    claimAnyLive: db.prepare(
      "SELECT jti FROM claims WHERE driver = ? AND resource = ? AND mode IN ('exclusive', 'shared') AND exp > ? AND jti != ? LIMIT 1",
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
    revocationsCollect: db.prepare('DELETE FROM revocations WHERE until < ?'),
    grantsCollect: db.prepare(
      `DELETE FROM grants WHERE jti IN (SELECT jti FROM grants WHERE jti < ? AND exp < ? LIMIT ${GC_BATCH})`,
    ),
    revocationsAfter: db.prepare(
      'SELECT seq, kind, value, at, until, reason FROM revocations WHERE seq > ? ORDER BY seq',
    ),
    // The AUTOINCREMENT counter, not max(seq): collected records must not move the head back (drivers refuse a
    // list whose sequence went backwards).
    revocationHead: db.prepare(
      "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0) AS head",
    ),
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
