/**
 * The etcd implementation of {@link Store}: several permission-server replicas share one etcd cluster
 * (3.4, through the etcd3 npm client) for policy, tokens, signing keys, grants, revocations and audit.
 *
 * - Sequences are etcd revisions: a revocation's seq is the revision that created its record, an audit
 *   record's seq likewise; policy versions are mod revisions. All cluster-wide, strictly increasing, sparse.
 * - Every mutation is one etcd transaction that also writes its audit record.
 * - `issueGrant` is one txn comparing the mod revision of every resource key it read (0 = absent), so two
 *   replicas racing for the same exclusive claim cannot both succeed: the loser's compare fails, it re-reads
 *   and finds the winner's live claim.
 * - Revocations are PUT records (never deletions), then matching grants are marked and their claims
 *   released in further txns. The record is the authority: a crash between the steps leaves claims held
 *   until expiry (a refusal, never an overlap) and drivers reject the grant from the feed anyway.
 * - Every call has a deadline; without quorum a call fails with {@link StoreUnavailableError}
 *   (`EXO_ERR_STORE_UNAVAILABLE`, HTTP 503), so replicas refuse writes clearly.
 * Key layout: see `etcd-keys.ts`. Watches: see `etcd-watch.ts` (one self-healing watch) and `etcd-hub.ts` (its
 * fan-out to every subscriber of a replica).
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { Etcd3, type ICompare, type IKeyValue, type IRequestOp } from 'etcd3';
import { watchChanges } from './etcd-changes.ts';
import { StoreContentionError, StoreCorruptError, StoreUsageError, toStoreError } from './etcd-errors.ts';
import { RevocationHub } from './etcd-hub.ts';
import { dec, EtcdKeys, prefixEnd } from './etcd-keys.ts';
import { callDeadlines, deleteOp, EtcdKv, type Kv, parseJson, putOp, rangeKvs, rangeOp, toKv } from './etcd-kv.ts';
import { checkEtcdSecurity, type EtcdAuth, type EtcdTls, etcdSecurityFromEnvironment } from './etcd-security.ts';
import { type RevocationWatch, type RevocationWatchOptions, watchRevocationRecords } from './etcd-watch.ts';
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

export { StoreContentionError, StoreCorruptError, StoreUnavailableError, StoreUsageError } from './etcd-errors.ts';

/** Options of {@link EtcdStore}. */
export interface EtcdStoreOptions {
  /** Client URLs of the etcd members, e.g. `http://127.0.0.1:2379`. */
  readonly endpoints: readonly string[];
  /** Key prefix (default `/exonet/`); replicas of one cluster identity share it. */
  readonly prefix?: string;
  /**
   * Deadline of each attempt of an etcd call in ms (default 2000; the client tries up to three members, so a
   * call without quorum fails as unavailable after a few seconds at most).
   */
  readonly callTimeoutMs?: number;
  /** TLS material for `https://` endpoints (default: from the environment, see `etcd-security.ts`). */
  readonly tls?: EtcdTls;
  /** etcd user and password (default: from the environment; refused over `http://`). */
  readonly auth?: EtcdAuth;
  /** gRPC dial timeout in ms (default 2000). */
  readonly dialTimeoutMs?: number;
  /** Tuning of the revocation watches. */
  readonly watch?: RevocationWatchOptions;
  /**
   * Instrumentation: called the moment a revocation by this replica is committed (durable in etcd and
   * numbered), before its grants are marked. The revocation benchmark measures from here.
   */
  readonly onRevocationCommitted?: (entry: RevocationEntry) => void;
  /**
   * Garbage collection of records that can no longer matter (default every 10 min; 0 disables): revocation
   * records whose `until` passed more than an hour ago, and grant records expired more than
   * `grantRetentionSec` ago (default one day; the audit log keeps their issue and revocation for good).
   */
  readonly gcIntervalMs?: number;
  readonly grantRetentionSec?: number;
}

const policyKinds: readonly PolicyKind[] = ['principals', 'groups', 'rules', 'drivers'];
/** Compare-and-set loops give up after this many lost races (each loss means someone else progressed). */
const maxAttempts = 64;
/** etcd's default --max-txn-ops is 128; stay well below it. */
const maxGrantsPerTxn = 20;

/** A live claim as kept in a resource key. */
interface StoredClaim {
  readonly jti: string;
  readonly mode: 'exclusive' | 'shared';
  readonly exp: number;
}

/** Stored form of a grant record (revokedSeq stored explicitly). */
type StoredGrant = GrantRecord;

/** Parses an etcd URL list for `--store etcd:URL,URL,URL`. */
export function parseEtcdEndpoints(spec: string): string[] {
  const endpoints = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (endpoints.length === 0) throw new StoreUsageError('etcd store: no endpoint given (etcd:URL,URL,URL)');
  for (const e of endpoints) {
    let url: URL;
    try {
      url = new URL(e);
    } catch {
      throw new StoreUsageError(`etcd store: "${e}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new StoreUsageError(`etcd store: "${e}" is not an http(s) URL`);
    }
  }
  return endpoints;
}

/** The permission server's store on an etcd cluster. */
export class EtcdStore implements Store {
  readonly kind = 'etcd';
  readonly keys: EtcdKeys;
  private client: Etcd3 | null = null;
  private kvs: EtcdKv | null = null;
  private closed = false;
  /** Change watches (keys) to stop on close. */
  private readonly watches = new Set<{ stop: () => void }>();
  /** The shared revocation watch of this replica (its own revocations reach it before `revoke` resolves). */
  private hub: RevocationHub | null = null;
  private gcTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new StoreUsageError('etcd store: no endpoints');
    this.keys = new EtcdKeys(options.prefix ?? '/exonet/');
  }

  /** The underlying etcd3 client (for leader election and tests). */
  get etcd(): Etcd3 {
    if (this.closed) throw new StoreUsageError('etcd store is closed');
    if (!this.client) throw new StoreUsageError('etcd store is not open');
    return this.client;
  }

  private get kv(): EtcdKv {
    if (this.closed) throw new StoreUsageError('etcd store is closed');
    if (!this.kvs) throw new StoreUsageError('etcd store is not open');
    return this.kvs;
  }

  async open(): Promise<void> {
    if (this.closed) throw new StoreUsageError('etcd store is closed');
    if (this.client) return;
    const gcEvery = this.options.gcIntervalMs ?? 600_000;
    if (gcEvery > 0) {
      // Every replica collects; deletes compare mod revisions, so concurrent collectors do no harm.
      this.gcTimer = setInterval(() => {
        this.collectGarbage().catch(() => {});
      }, gcEvery);
      this.gcTimer.unref();
    }
    const fromEnv = this.options.tls || this.options.auth ? {} : etcdSecurityFromEnvironment();
    const tls = this.options.tls ?? fromEnv.tls;
    const auth = this.options.auth ?? fromEnv.auth;
    checkEtcdSecurity(this.options.endpoints, tls, auth);
    this.client = new Etcd3({
      hosts: [...this.options.endpoints],
      credentials: tls ? { rootCertificate: tls.ca as Buffer, privateKey: tls.key, certChain: tls.cert } : undefined,
      auth,
      dialTimeout: this.options.dialTimeoutMs ?? 2000,
      defaultCallOptions: callDeadlines(this.options.callTimeoutMs ?? 2000),
    });
    this.kvs = new EtcdKv(this.client);
    // Nothing to migrate: the layout is versioned by a marker written once.
    const marker = this.keys.meta('schema');
    await this.kv.txn(
      {
        compare: [{ key: Buffer.from(marker), target: 'Version', result: 'Equal', version: 0 }],
        success: [putOp(marker, { version: 1 })],
      },
      'open',
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.gcTimer) clearInterval(this.gcTimer);
    for (const watch of [...this.watches]) watch.stop();
    this.watches.clear();
    this.hub?.stop();
    this.hub = null;
    this.client?.close();
    this.client = null;
    this.kvs = null;
  }

  /** A linearizable read: succeeds only while the cluster has quorum. */
  async ping(): Promise<void> {
    await this.kv.range(this.keys.meta('schema'), 'ping');
  }

  /** A compare that holds while no key under `prefix` was written (or created) after `revision`. */
  private unchangedSince(prefix: string, revision: number): ICompare {
    const key = Buffer.from(prefix);
    return { key, range_end: prefixEnd(key), target: 'Mod', result: 'Less', mod_revision: revision + 1 };
  }

  // --- audit helper ---

  private auditOp(action: string, subject: string, ctx: AuditContext, detail: Record<string, unknown> = {}) {
    return putOp(this.keys.audit(randomUUID()), {
      at: Math.floor(Date.now() / 1000),
      actor: ctx.actor,
      requestId: ctx.requestId ?? null,
      action,
      subject,
      detail,
    });
  }

  // --- policy ---

  private decodePolicy<K extends PolicyKind>(kv: Kv): PolicyObjects[K] {
    const value = parseJson<Record<string, unknown>>(kv);
    return { ...value, version: kv.modRevision } as unknown as PolicyObjects[K];
  }

  async list<K extends PolicyKind>(kind: K): Promise<PolicyObjects[K][]> {
    checkKind(kind);
    const { kvs } = await this.kv.range(this.keys.policy(kind), `list ${kind}`, { prefix: true });
    return kvs.map((kv) => this.decodePolicy<K>(kv));
  }

  async get<K extends PolicyKind>(kind: K, id: string): Promise<PolicyObjects[K] | undefined> {
    checkKind(kind);
    const { kvs } = await this.kv.range(this.keys.policy(kind, id), `get ${kind}`);
    return kvs[0] ? this.decodePolicy<K>(kvs[0]) : undefined;
  }

  async put<K extends PolicyKind>(
    kind: K,
    value: PolicyInput<K>,
    ctx: AuditContext,
    ifVersion?: number,
  ): Promise<PutResult<PolicyObjects[K]>> {
    checkKind(kind);
    const id = (value as { id: string }).id;
    if (typeof id !== 'string' || id.length === 0) throw new StoreUsageError(`${kind}: id must be a non-empty string`);
    const { version: _drop, ...plain } = value as PolicyInput<K> & { version?: number };
    const key = this.keys.policy(kind, id);
    const compare: ICompare[] = [];
    if (ifVersion === 0) compare.push({ key: Buffer.from(key), target: 'Version', result: 'Equal', version: 0 });
    else if (ifVersion !== undefined) {
      compare.push({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: ifVersion });
    }
    const res = await this.kv.txn(
      { compare, success: [putOp(key, plain), this.auditOp(`${kind}.put`, id, ctx, { ifVersion, value: plain })] },
      `put ${kind}`,
    );
    if (!res.succeeded) return { ok: false, reason: 'version' };
    return { ok: true, value: { ...plain, version: res.revision } as unknown as PolicyObjects[K] };
  }

  async delete(kind: PolicyKind, id: string, ctx: AuditContext): Promise<boolean> {
    checkKind(kind);
    const key = this.keys.policy(kind, id);
    const res = await this.kv.txn(
      {
        compare: [{ key: Buffer.from(key), target: 'Version', result: 'Greater', version: 0 }],
        success: [deleteOp(key), this.auditOp(`${kind}.delete`, id, ctx)],
      },
      `delete ${kind}`,
    );
    return res.succeeded;
  }

  // --- tokens ---

  async addToken(token: TokenRecord, ctx: AuditContext): Promise<void> {
    await this.kv.txn(
      {
        success: [
          putOp(this.keys.tokens(token.hash), token),
          // The audit names the principal, never the token hash.
          this.auditOp('token.add', token.principal, ctx),
        ],
      },
      'addToken',
    );
  }

  async findToken(hash: string): Promise<TokenRecord | undefined> {
    const { kvs } = await this.kv.range(this.keys.tokens(hash), 'findToken');
    return kvs[0] ? parseJson<TokenRecord>(kvs[0]) : undefined;
  }

  async deleteTokens(principal: string, ctx: AuditContext): Promise<number> {
    const { kvs } = await this.kv.range(this.keys.tokens(), 'deleteTokens', { prefix: true });
    const mine = kvs.filter((kv) => parseJson<TokenRecord>(kv).principal === principal);
    const ops: IRequestOp[] = mine.map((kv) => deleteOp(kv.key));
    ops.push(this.auditOp('token.delete', principal, ctx, { count: mine.length }));
    // Unconditional deletes: a token added concurrently is the caller's newer intent and survives.
    await this.kv.txn({ success: ops }, 'deleteTokens');
    return mine.length;
  }

  // --- signing keys ---

  async listKeys(): Promise<SigningKeyRecord[]> {
    const res = await this.kv.txn(
      {
        success: [
          rangeOp(this.keys.keys(), { prefix: true }),
          rangeOp(this.keys.keyExp(), { prefix: true, keysOnly: true }),
        ],
      },
      'listKeys',
    );
    const records = rangeKvs(res.responses[0]).map((kv) => parseJson<SigningKeyRecord>(kv));
    const maxExp = new Map<string, number>();
    const expPrefix = this.keys.keyExp();
    for (const kv of rangeKvs(res.responses[1])) {
      const [kidPart, expPart] = kv.key.slice(expPrefix.length).split('/');
      const kid = dec(kidPart);
      const exp = Number(expPart);
      if (Number.isFinite(exp) && exp > (maxExp.get(kid) ?? 0)) maxExp.set(kid, exp);
    }
    return records.map((k) => ({ ...k, lastGrantExp: Math.max(k.lastGrantExp, maxExp.get(k.kid) ?? 0) }));
  }

  /**
   * Inserts a key. An `active` key retires the current active one in the same txn (two replicas that both
   * found no active key at start-up and each added one end with exactly one active key; the other replica
   * learns it through {@link EtcdStore.watchKeys}).
   */
  async addKey(key: SigningKeyRecord, ctx: AuditContext): Promise<void> {
    const k = this.keys.keys(key.kid);
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const compare: ICompare[] = [{ key: Buffer.from(k), target: 'Version', result: 'Equal', version: 0 }];
      const ops: IRequestOp[] = [putOp(k, key), this.auditOp('key.add', key.kid, ctx, { state: key.state })];
      if (key.state === 'active') {
        const { kvs, revision } = await this.kv.range(this.keys.keys(), 'addKey', { prefix: true });
        // No key under the prefix may change (or appear) between this read and the write.
        compare.push(this.unchangedSince(this.keys.keys(), revision));
        for (const kv of kvs) {
          const other = parseJson<SigningKeyRecord>(kv);
          if (other.kid === key.kid) throw new StoreUsageError(`signing key ${key.kid} already exists`);
          if (other.state === 'active') {
            ops.push(putOp(kv.key, { ...other, state: 'retired', retiredAt: key.activatedAt ?? key.createdAt }));
          }
        }
      }
      const res = await this.kv.txn({ compare, success: ops, failure: [rangeOp(k)] }, 'addKey');
      if (res.succeeded) return;
      if (rangeKvs(res.responses[0]).length > 0) throw new StoreUsageError(`signing key ${key.kid} already exists`);
    }
    throw new StoreContentionError('addKey', maxAttempts);
  }

  /**
   * Calls `onChange` whenever any replica adds, activates, retires or deletes a signing key (and after a
   * broken watch, and every 30 s as a safety net), so every replica reloads its keys: one JWKS for the
   * whole cluster, and each replica signs with the one active key.
   */
  watchKeys(onChange: () => void): Unsubscribe {
    const stop = watchChanges(this.etcd, this.keys.keys(), onChange);
    const entry = { stop };
    this.watches.add(entry);
    return () => {
      this.watches.delete(entry);
      stop();
    };
  }

  /** Makes `kid` the only active key (a no-op for a retired key: keys never go back from retired). */
  async activateKey(kid: string, now: number, ctx: AuditContext): Promise<void> {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const { kvs, revision } = await this.kv.range(this.keys.keys(), 'activateKey', { prefix: true });
      const records = kvs.map((kv) => ({ kv, key: parseJson<SigningKeyRecord>(kv) }));
      const target = records.find((r) => r.key.kid === kid);
      if (!target) throw new StoreUsageError(`signing key ${kid} is unknown`);
      // A retired key never becomes active again: a replica acting on a stale view (its key tick promoting a
      // `next` key that another replica's later rotation already retired) must not flip the cluster back.
      if (target.key.state === 'retired') return;
      // Compare every key record read, so two replicas activating concurrently serialise: one wins, the
      // other re-reads and applies its activation on top (the last activation is the only active key).
      const compare: ICompare[] = [this.unchangedSince(this.keys.keys(), revision)];
      const ops: IRequestOp[] = [];
      for (const r of records) {
        if (r.key.kid === kid) {
          if (r.key.state !== 'active') {
            ops.push(putOp(r.kv.key, { ...r.key, state: 'active', activatedAt: now }));
          }
        } else if (r.key.state === 'active') {
          ops.push(putOp(r.kv.key, { ...r.key, state: 'retired', retiredAt: now }));
        }
      }
      ops.push(this.auditOp('key.activate', kid, ctx));
      const res = await this.kv.txn({ compare, success: ops }, 'activateKey');
      if (res.succeeded) return;
    }
    throw new StoreContentionError('activateKey', maxAttempts);
  }

  /** Deletes a retired key (an active or next key is never deleted: resolves false). */
  async deleteKey(kid: string, ctx: AuditContext): Promise<boolean> {
    const k = this.keys.keys(kid);
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const { kvs } = await this.kv.range(k, 'deleteKey');
      if (!kvs[0] || parseJson<SigningKeyRecord>(kvs[0]).state !== 'retired') return false;
      const res = await this.kv.txn(
        {
          compare: [{ key: Buffer.from(k), target: 'Mod', result: 'Equal', mod_revision: kvs[0].modRevision }],
          success: [
            deleteOp(k),
            deleteOp(this.keys.keyExp(kid), { prefix: true }),
            this.auditOp('key.delete', kid, ctx),
          ],
        },
        'deleteKey',
      );
      if (res.succeeded) return true;
    }
    throw new StoreContentionError('deleteKey', maxAttempts);
  }

  // --- grants ---

  async issueGrant(grant: GrantRecord, now: number, ctx: AuditContext): Promise<IssueResult> {
    // Group the requested claims by resource key (one read and one compare per key).
    const byKey = new Map<string, { resource: string; modes: ('exclusive' | 'shared')[] }>();
    for (const c of grant.claims) {
      const key = this.keys.resource(c.driver, c.resource);
      const entry = byKey.get(key) ?? { resource: c.resource, modes: [] };
      entry.modes.push(c.mode);
      byKey.set(key, entry);
    }
    const resourceKeys = [...byKey.keys()];
    const grantKey = this.keys.grants(grant.jti);
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const read = await this.kv.txn(
        { success: [rangeOp(grantKey), ...resourceKeys.map((k) => rangeOp(k))] },
        'issueGrant',
      );
      const existing = rangeKvs(read.responses[0])[0];
      if (existing) {
        // Our own earlier attempt may have committed before its answer was lost (the client retries).
        if (parseJson<StoredGrant>(existing).jws === grant.jws) return { ok: true };
        throw new StoreUsageError(`grant ${grant.jti} already exists`);
      }
      const compare: ICompare[] = [{ key: Buffer.from(grantKey), target: 'Version', result: 'Equal', version: 0 }];
      const ops: IRequestOp[] = [];
      for (let i = 0; i < resourceKeys.length; i++) {
        const key = resourceKeys[i];
        const kv = rangeKvs(read.responses[i + 1])[0];
        const { resource, modes } = byKey.get(key)!;
        const live = kv ? decodeClaims(kv).filter((c) => c.exp > now && c.jti !== grant.jti) : [];
        const wantsExclusive = modes.includes('exclusive');
        // A renewal takes over the claims of the grant it renews (both stay recorded until the old expires).
        const conflict = live.find((c) => c.jti !== grant.renewedFrom && (wantsExclusive || c.mode === 'exclusive'));
        if (conflict) return { ok: false, reason: 'conflict', conflicting: { jti: conflict.jti, resource } };
        compare.push(
          kv
            ? { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: kv.modRevision }
            : { key: Buffer.from(key), target: 'Version', result: 'Equal', version: 0 },
        );
        // Expired claims are pruned on the way, so resource keys stay small.
        ops.push(
          putOp(key, {
            claims: [...live, { jti: grant.jti, mode: wantsExclusive ? 'exclusive' : 'shared', exp: grant.exp }],
          }),
        );
      }
      ops.push(putOp(grantKey, { ...grant, revokedSeq: null }));
      for (const key of this.grantIndexKeys(grant)) ops.push(putOp(key, ''));
      ops.push(putOp(this.keys.keyExp(grant.kid, grant.exp), ''));
      ops.push(
        this.auditOp('grant.issue', grant.jti, ctx, {
          sub: grant.sub,
          driver: grant.driver,
          rule: grant.rule,
          exclusive: grant.exclusive,
          exp: grant.exp,
        }),
      );
      const res = await this.kv.txn({ compare, success: ops }, 'issueGrant');
      if (res.succeeded) return { ok: true };
      // Lost a race on a resource key: re-read and decide again.
    }
    throw new StoreContentionError('issueGrant', maxAttempts);
  }

  async getGrant(jti: string): Promise<GrantRecord | undefined> {
    const { kvs } = await this.kv.range(this.keys.grants(jti), 'getGrant');
    return kvs[0] ? parseJson<StoredGrant>(kvs[0]) : undefined;
  }

  async listGrants(filter: {
    readonly sub?: string;
    readonly liveAt?: number;
    readonly limit?: number;
  }): Promise<GrantRecord[]> {
    const kvs =
      filter.sub !== undefined
        ? await this.indexedGrants('sub', filter.sub, 'listGrants')
        : (await this.kv.range(this.keys.grants(), 'listGrants', { prefix: true })).kvs;
    const out: { g: GrantRecord; rev: number }[] = [];
    for (const kv of kvs) {
      const g = parseJson<StoredGrant>(kv);
      if (filter.sub !== undefined && g.sub !== filter.sub) continue;
      if (filter.liveAt !== undefined && (g.revokedSeq !== null || g.exp <= filter.liveAt)) continue;
      out.push({ g, rev: kv.createRevision });
    }
    out.sort((a, b) => b.g.iat - a.g.iat || b.rev - a.rev);
    const limited = filter.limit !== undefined ? out.slice(0, Math.max(0, filter.limit)) : out;
    return limited.map((x) => x.g);
  }

  private grantIndexKeys(g: { jti: string; sub: string; rule: string; kid: string }): string[] {
    return [
      this.keys.grantIndex('sub', g.sub, g.jti),
      this.keys.grantIndex('rule', g.rule, g.jti),
      this.keys.grantIndex('kid', g.kid, g.jti),
    ];
  }

  /** The grant records of one subject, rule or key, through the index (records read 100 per txn). */
  private async indexedGrants(kind: 'sub' | 'rule' | 'kid', value: string, what: string): Promise<Kv[]> {
    const prefix = this.keys.grantIndex(kind, value);
    const { kvs: index } = await this.kv.range(prefix, what, { prefix: true, keysOnly: true });
    const jtis = index.map((kv) => dec(kv.key.slice(prefix.length)));
    const out: Kv[] = [];
    for (let i = 0; i < jtis.length; i += 100) {
      const res = await this.kv.txn(
        { success: jtis.slice(i, i + 100).map((jti) => rangeOp(this.keys.grants(jti))) },
        what,
      );
      for (const r of res.responses) out.push(...rangeKvs(r));
    }
    return out;
  }

  // --- revocations ---

  async revoke(input: RevocationInput, ctx: AuditContext): Promise<RevocationEntry> {
    const { kind, value, at, until, reason } = input;
    const record: RevocationInput = { kind, value, at, until, reason };
    const recordKey = this.keys.revocations(randomUUID());
    // Step 1, the authority: the record (a PUT) and the head, in one txn whose revision is the seq. The
    // record key is fresh, so the compare fails only when the client retried an attempt that did commit
    // (its answer lost): then that attempt's record is ours and its create revision the seq.
    const res = await this.kv.txn(
      {
        compare: [{ key: Buffer.from(recordKey), target: 'Version', result: 'Equal', version: 0 }],
        success: [
          putOp(recordKey, record),
          putOp(this.keys.revocationsHead(), ''),
          this.auditOp('revocation.create', `${kind}:${value}`, ctx, { at, until, reason }),
        ],
        failure: [rangeOp(recordKey)],
      },
      'revoke',
    );
    const earlier = res.succeeded ? undefined : rangeKvs(res.responses[0])[0];
    const seq = earlier ? earlier.createRevision : res.revision;
    try {
      this.options.onRevocationCommitted?.({ ...record, seq });
    } catch {
      // instrumentation must never fail a revocation
    }
    // Step 2: mark matching grants and release their claims (read after step 1, so every grant issued
    // before the record existed is seen).
    await this.markRevoked(record, seq);
    // This replica's own feed has the entry before the client hears "201": no watch round trip.
    await this.hub?.catchUp(seq);
    return { ...record, seq };
  }

  private async markRevoked(rev: RevocationInput, seq: number): Promise<void> {
    const matches = (g: GrantRecord) => {
      if (g.revokedSeq !== null) return false;
      switch (rev.kind) {
        case 'jti':
          return g.jti === rev.value;
        case 'kid':
          return g.kid === rev.value;
        case 'sub':
          return g.sub === rev.value && g.iat <= rev.at;
        case 'rule':
          return g.rule === rev.value && g.iat <= rev.at;
        default:
          return false;
      }
    };
    const kvs =
      rev.kind === 'jti'
        ? (await this.kv.range(this.keys.grants(rev.value), 'revoke')).kvs
        : await this.indexedGrants(rev.kind, rev.value, 'revoke');
    let pending = kvs.map((kv) => ({ kv, g: parseJson<StoredGrant>(kv) })).filter((x) => matches(x.g));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= maxAttempts) throw new StoreContentionError('revoke', maxAttempts);
      const batch = pending.slice(0, maxGrantsPerTxn);
      const ok = await this.markBatch(batch, seq);
      if (ok) {
        pending = pending.slice(batch.length);
        continue;
      }
      // Something in the batch changed concurrently: re-read those grants and retry what still matches.
      const reread = await this.kv.txn({ success: batch.map((x) => rangeOp(x.kv.key)) }, 'revoke');
      const fresh = reread.responses
        .flatMap((r) => rangeKvs(r))
        .map((kv) => ({ kv, g: parseJson<StoredGrant>(kv) }))
        .filter((x) => matches(x.g));
      pending = [...fresh, ...pending.slice(batch.length)];
    }
  }

  /** One txn: mark the grants revoked with `seq` and remove their claims from the resource keys. */
  private async markBatch(batch: { kv: Kv; g: GrantRecord }[], seq: number): Promise<boolean> {
    const jtis = new Set(batch.map((x) => x.g.jti));
    const resourceKeys = [
      ...new Set(batch.flatMap((x) => x.g.claims.map((c) => this.keys.resource(c.driver, c.resource)))),
    ];
    const read = resourceKeys.length
      ? await this.kv.txn({ success: resourceKeys.map((k) => rangeOp(k)) }, 'revoke')
      : { responses: [] };
    const compare: ICompare[] = batch.map((x) => ({
      key: Buffer.from(x.kv.key),
      target: 'Mod',
      result: 'Equal',
      mod_revision: x.kv.modRevision,
    }));
    const ops: IRequestOp[] = batch.map((x) => putOp(x.kv.key, { ...x.g, revokedSeq: seq }));
    resourceKeys.forEach((key, i) => {
      const kv = rangeKvs(read.responses[i])[0];
      if (!kv) return;
      compare.push({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: kv.modRevision });
      const remaining = decodeClaims(kv).filter((c) => !jtis.has(c.jti));
      ops.push(remaining.length ? putOp(key, { claims: remaining }) : deleteOp(key));
    });
    const res = await this.kv.txn({ compare, success: ops }, 'revoke');
    return res.succeeded;
  }

  private decodeRevocation(kv: Kv): RevocationEntry {
    const r = parseJson<RevocationInput>(kv);
    return { kind: r.kind, value: r.value, at: r.at, until: r.until, reason: r.reason, seq: kv.createRevision };
  }

  /** Entries with seq > after and the revision this read saw (for watches). */
  private async listRevocationsAt(after: number) {
    const res = await this.kv.txn(
      {
        success: [
          rangeOp(this.keys.revocationsHead()),
          rangeOp(this.keys.revocations(), { prefix: true, createdAfter: after, sortByCreate: 'asc' }),
        ],
      },
      'listRevocations',
    );
    const headKv = rangeKvs(res.responses[0])[0];
    const entries = rangeKvs(res.responses[1]).map((kv) => this.decodeRevocation(kv));
    return { head: headKv ? headKv.modRevision : 0, entries, revision: res.revision };
  }

  async listRevocations(after: number): Promise<{ readonly head: number; readonly entries: RevocationEntry[] }> {
    const { head, entries } = await this.listRevocationsAt(after);
    return { head, entries };
  }

  /**
   * Every revocation with seq > after, then every new one, in order. All subscribers of this replica share
   * one self-healing etcd watch (see `etcd-hub.ts` and `etcd-watch.ts`); `onError` reports a broken watch
   * (once per outage; the watch repairs itself, and re-subscribing from the last seq is equally safe).
   */
  watchRevocations(
    after: number,
    onEntry: (entry: RevocationEntry) => void,
    onError?: (err: Error) => void,
  ): Unsubscribe {
    void this.etcd; // throws when the store is closed or not open
    this.hub ??= new RevocationHub({
      head: async () => (await this.listRevocationsAt(Number.MAX_SAFE_INTEGER)).head,
      list: async (from) => (await this.listRevocationsAt(from)).entries,
      watch: (from, deliver, fail) => this.rawRevocationWatch(from, deliver, fail),
    });
    return this.hub.subscribe(after, onEntry, onError);
  }

  /** One self-healing watch of the revocation records (the hub's source). */
  private rawRevocationWatch(
    after: number,
    onEntry: (entry: RevocationEntry) => void,
    onError: (err: Error) => void,
  ): RevocationWatch {
    const prefix = this.keys.revocations();
    return watchRevocationRecords(
      {
        client: this.etcd,
        prefix,
        list: async (from) => {
          const { entries, revision } = await this.listRevocationsAt(from);
          return { entries, revision };
        },
        decode: (raw: IKeyValue) => {
          const kv = toKv(raw);
          // Only the creation of a record is a revocation; a rewrite (a retried put) is not a new entry.
          if (!kv.key.startsWith(prefix) || kv.createRevision !== kv.modRevision) return undefined;
          try {
            return this.decodeRevocation(kv);
          } catch {
            return undefined;
          }
        },
      },
      after,
      onEntry,
      onError,
      this.options.watch,
    );
  }

  // --- audit ---

  async listAudit(after: number, limit: number): Promise<AuditRecord[]> {
    const { kvs } = await this.kv.range(this.keys.audit(), 'listAudit', {
      prefix: true,
      createdAfter: after,
      sortByCreate: 'asc',
      limit: Math.max(0, limit),
    });
    return kvs.map((kv) => {
      const a = parseJson<Omit<AuditRecord, 'seq'>>(kv);
      return {
        seq: kv.createRevision,
        at: a.at,
        actor: a.actor,
        requestId: a.requestId ?? null,
        action: a.action,
        subject: a.subject,
        detail: a.detail ?? {},
      };
    });
  }

  // --- maintenance (tests and operators) ---

  /**
   * Deletes revocation records whose `until` is more than an hour past `now` (no grant they match can still
   * be valid, so no feed needs them) and grant records expired more than the retention ago. Resolves with
   * how many were deleted. Runs periodically on its own (see `gcIntervalMs`).
   */
  async collectGarbage(now = Math.floor(Date.now() / 1000)): Promise<{ revocations: number; grants: number }> {
    const retention = this.options.grantRetentionSec ?? 86_400;
    const res = await this.kv.txn(
      { success: [rangeOp(this.keys.revocations(), { prefix: true }), rangeOp(this.keys.grants(), { prefix: true })] },
      'collectGarbage',
    );
    const oldRevocations = rangeKvs(res.responses[0]).filter((kv) => {
      const r = parseJson<RevocationInput>(kv);
      return typeof r.until === 'number' && r.until + 3600 < now;
    });
    const oldGrants = rangeKvs(res.responses[1]).filter((kv) => {
      const g = parseJson<StoredGrant>(kv);
      return typeof g.exp === 'number' && g.exp + retention < now;
    });
    const doomed = [...oldRevocations, ...oldGrants];
    for (let i = 0; i < doomed.length; i += 100) {
      const batch = doomed.slice(i, i + 100);
      // One compare per key: a record rewritten meanwhile is kept (the next round looks again).
      await Promise.all(
        batch.map((kv) => {
          // A grant leaves with its index keys.
          const extra = kv.key.startsWith(this.keys.grants())
            ? this.grantIndexKeys(parseJson<StoredGrant>(kv)).map((k) => deleteOp(k))
            : [];
          return this.kv.txn(
            {
              compare: [{ key: Buffer.from(kv.key), target: 'Mod', result: 'Equal', mod_revision: kv.modRevision }],
              success: [deleteOp(kv.key), ...extra],
            },
            'collectGarbage',
          );
        }),
      );
    }
    // Per key only the latest grant expiry matters: drop the lower `keyexp` entries (one range delete each).
    const expPrefix = this.keys.keyExp();
    const { kvs: exps } = await this.kv.range(expPrefix, 'collectGarbage', { prefix: true, keysOnly: true });
    const maxByKid = new Map<string, string>();
    for (const kv of exps) {
      const kidPart = kv.key.slice(expPrefix.length).split('/')[0];
      const best = maxByKid.get(kidPart);
      if (best === undefined || kv.key > best) maxByKid.set(kidPart, kv.key);
    }
    const prunes = [...maxByKid].map(([kidPart, max]) => deleteOp(`${expPrefix}${kidPart}/`, { before: max }));
    if (prunes.length > 0) await this.kv.txn({ success: prunes }, 'collectGarbage');
    return { revocations: oldRevocations.length, grants: oldGrants.length };
  }

  /** Compacts etcd's history up to the current revision (what `etcdctl compact` does). */
  async compact(): Promise<number> {
    try {
      const { revision } = await this.kv.range(this.keys.meta('schema'), 'compact');
      await this.etcd.kv.compact({ revision, physical: true });
      return revision;
    } catch (err) {
      throw toStoreError(err, 'compact');
    }
  }
}

function checkKind(kind: string): void {
  if (!policyKinds.includes(kind as PolicyKind)) throw new StoreUsageError(`unknown policy kind "${kind}"`);
}

function decodeClaims(kv: Kv): StoredClaim[] {
  const value = parseJson<{ claims?: unknown }>(kv);
  if (!Array.isArray(value.claims)) throw new StoreCorruptError(`etcd key ${kv.key} holds no claims array`);
  return value.claims as StoredClaim[];
}
