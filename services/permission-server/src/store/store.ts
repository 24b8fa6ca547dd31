/**
 * The permission server's storage contract. The SQLite store (`sqlite.ts`) is the embedded default; an etcd
 * store implements the same interface for several servers sharing one cluster.
 *
 * Rules every implementation keeps (the tests in `test/store-contract.ts` check them for any store):
 * - Every method is async and every write is durable when its promise resolves: the server acknowledges a
 *   client only after that, so an acknowledged write survives kill -9 (SQLite: WAL + synchronous=FULL; etcd:
 *   a write is committed once a quorum has it).
 * - Every mutation appends one audit record in the same transaction as the change itself (`AuditContext`
 *   says who asked and under which request id).
 * - Sequence numbers (`seq`) are cluster-wide, strictly increasing, but NOT necessarily dense: etcd uses its
 *   revision, so numbers may jump. Clients only ever compare them and resume "after N".
 * - Optimistic concurrency for policy objects: each object carries a `version` (SQLite: a counter; etcd: the
 *   key's mod revision). Passing `ifVersion` makes a write a compare-and-set; a mismatch resolves to
 *   `{ ok: false, reason: 'version' }` rather than throwing.
 * - `issueGrant` is the exclusivity primitive: checking the resources for conflicting live claims and
 *   writing the grant with its claims happen atomically (SQLite: one IMMEDIATE transaction; etcd: one txn
 *   comparing the mod revision of every resource key it read).
 * - Revocations are written as records (tombstones), never as deletions, so a watcher cannot miss one
 *   (see etcd #18089 in the reference notes).
 *
 * @packageDocumentation
 */

/** Who caused a change, for the audit log. */
export interface AuditContext {
  /** Principal id of the caller, or `system` for the server itself (key rotation, start-up). */
  readonly actor: string;
  /** Request id from the HTTP layer (pino's reqId), if any. */
  readonly requestId?: string;
}

/** A user of the system: the subject of grants. */
export interface Principal {
  readonly id: string;
  /** Numeric user id on the task's host (the template attribute `{principal.uid}`). */
  readonly uid: number;
  readonly groups: readonly string[];
  readonly capabilities: readonly string[];
  /** Admins manage policy and revocations. */
  readonly admin: boolean;
  /** Free attributes usable in filter templates as `{principal.NAME}`. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Disabled principals are refused at authentication. */
  readonly disabled: boolean;
  readonly version: number;
}

/** A bearer token belongs to exactly one principal; only its SHA-256 hash is ever stored. */
export interface TokenRecord {
  /** Hex SHA-256 of the token (the lookup key; the server compares it again in constant time). */
  readonly hash: string;
  readonly principal: string;
  readonly createdAt: number;
}

/** A named set of capabilities shared by its members. */
export interface Group {
  readonly id: string;
  readonly capabilities: readonly string[];
  readonly description: string;
  readonly version: number;
}

/** Inclusive port range. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** A policy rule: who may receive or send what. */
export interface Rule {
  readonly id: string;
  /** Who it applies to: any listed user, any member of a listed group, or anyone holding a capability. */
  readonly who: {
    readonly users: readonly string[];
    readonly groups: readonly string[];
    readonly capabilities: readonly string[];
  };
  readonly dir: 'rx' | 'tx';
  readonly layer: 'task' | 'user' | 'system';
  /**
   * pcap-filter template; `{port}`, `{principal.uid}`, `{principal.ATTR}`, `{driver.id}`, `{driver.ATTR}`
   * are replaced (values are checked to be plain tokens before substitution, so a value can never inject
   * filter syntax).
   */
  readonly filter: string;
  /** Allowed values of `{port}`; empty when the template has no `{port}`. */
  readonly ports: readonly PortRange[];
  /** Driver ids the rule applies to; empty = every driver. */
  readonly drivers: readonly string[];
  readonly maxLifetimeSec: number;
  /** `exclusive`: every grant is exclusive; `shared`: none is; `either`: the request chooses. */
  readonly sharing: 'exclusive' | 'shared' | 'either';
  /**
   * Template of the exclusivity resource a grant under this rule claims on its driver (prefixed with the
   * direction), e.g. `udp/{port}` so that every rule about a UDP port competes for the same resource.
   * Default `port/{port}` when the filter has `{port}` (any two rules about a port compete), else
   * `rule/{rule.id}`.
   */
  readonly resource?: string;
  readonly description: string;
  readonly version: number;
}

/** A network driver known to the policy (its attributes feed filter templates). */
export interface Driver {
  readonly id: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly version: number;
}

/** Lifecycle of a signing key: published before use, retired (still published) until its grants expired. */
export type KeyState = 'next' | 'active' | 'retired';

/** An Ed25519 signing key. The private part is sealed (encrypted) before it reaches the store. */
export interface SigningKeyRecord {
  readonly kid: string;
  /** Public JWK (kty OKP, crv Ed25519, x). */
  readonly publicJwk: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string; readonly kid: string };
  /** Sealed private key (see keys.ts: AES-256-GCM under the key-encryption key; never plaintext). */
  readonly sealedPrivateKey: string;
  readonly state: KeyState;
  readonly createdAt: number;
  /** When the key became active (signed its first grant), seconds. */
  readonly activatedAt: number | null;
  readonly retiredAt: number | null;
  /** Latest `exp` of any grant signed with it: the key stays in the JWKS until then. */
  readonly lastGrantExp: number;
}

/** An exclusive or shared claim on one resource of one driver (e.g. `rx/udp/53`). */
export interface ResourceClaim {
  readonly driver: string;
  readonly resource: string;
  readonly mode: 'exclusive' | 'shared';
}

/** What the server remembers of every grant it issued. */
export interface GrantRecord {
  readonly jti: string;
  readonly sub: string;
  readonly driver: string;
  readonly dir: 'rx' | 'tx';
  readonly layer: 'task' | 'user' | 'system';
  readonly rule: string;
  readonly kid: string;
  /** RFC 7638 thumbprint of the holder key. */
  readonly cnfJkt: string;
  /** The holder's public JWK (renewal needs it). */
  readonly holderJwk: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };
  /** What the task asked for: a pcap expression, or `bpf:` + base64url of a program. */
  readonly requestedFilter: string;
  /** `{port}` the request named, if the rule has one. */
  readonly port: number | null;
  /** base64url of the installed program. */
  readonly bpf: string;
  readonly exclusive: boolean;
  readonly claims: readonly ResourceClaim[];
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  /** The compact JWS as issued. */
  readonly jws: string;
  /** Grant this one renews, if any. */
  readonly renewedFrom: string | null;
  /** Sequence number of the revocation that killed it, if revoked. */
  readonly revokedSeq: number | null;
}

/** What a revocation names. */
export type RevocationKind = 'jti' | 'sub' | 'rule' | 'kid';

/** A revocation as requested (before the store numbers it). */
export interface RevocationInput {
  readonly kind: RevocationKind;
  readonly value: string;
  /** Unix seconds; grants with `iat <= at` that match are revoked (for `jti` and `kid`: any). */
  readonly at: number;
  /** Unix seconds after which no grant this entry could match is still valid (it may be dropped then). */
  readonly until: number;
  readonly reason: string;
}

/** A numbered revocation. */
export interface RevocationEntry extends RevocationInput {
  readonly seq: number;
}

/** One audit record. */
export interface AuditRecord {
  readonly seq: number;
  readonly at: number;
  readonly actor: string;
  readonly requestId: string | null;
  /** e.g. `grant.issue`, `revocation.create`, `rule.put`, `rule.delete`, `key.rotate`. */
  readonly action: string;
  readonly subject: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

/** The result of a compare-and-set write. */
export type PutResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: 'version' };

/** The result of `issueGrant`. */
export type IssueResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: 'conflict';
      readonly conflicting: { readonly jti: string; readonly resource: string };
    };

/** Removes a watcher. */
export type Unsubscribe = () => void;

/** Policy object kinds with the same CRUD shape. */
export interface PolicyObjects {
  readonly principals: Principal;
  readonly groups: Group;
  readonly rules: Rule;
  readonly drivers: Driver;
}
export type PolicyKind = keyof PolicyObjects;

/** A policy object without its version (what callers write). */
export type PolicyInput<K extends PolicyKind> = Omit<PolicyObjects[K], 'version'>;

/** The storage behind a permission server. */
export interface Store {
  /** Short name for logs and /healthz (`sqlite`, `etcd`). */
  readonly kind: string;

  /** Opens the store and applies migrations. Idempotent. */
  open(): Promise<void>;
  /** Flushes and closes; later calls reject. */
  close(): Promise<void>;
  /** Readiness probe: resolves when the backend answers. */
  ping(): Promise<void>;

  // --- policy (principals, groups, rules, drivers) ---
  list<K extends PolicyKind>(kind: K): Promise<PolicyObjects[K][]>;
  get<K extends PolicyKind>(kind: K, id: string): Promise<PolicyObjects[K] | undefined>;
  /**
   * Creates or replaces. `ifVersion`: 0 = must not exist yet, n = must currently have version n;
   * undefined = unconditional.
   */
  put<K extends PolicyKind>(
    kind: K,
    value: PolicyInput<K>,
    ctx: AuditContext,
    ifVersion?: number,
  ): Promise<PutResult<PolicyObjects[K]>>;
  /** Deletes; resolves false when absent. */
  delete(kind: PolicyKind, id: string, ctx: AuditContext): Promise<boolean>;

  // --- bearer tokens ---
  addToken(token: TokenRecord, ctx: AuditContext): Promise<void>;
  /** Looks a token up by its hash. */
  findToken(hash: string): Promise<TokenRecord | undefined>;
  /** Removes every token of a principal (on principal deletion or token reset). */
  deleteTokens(principal: string, ctx: AuditContext): Promise<number>;

  // --- signing keys ---
  listKeys(): Promise<SigningKeyRecord[]>;
  /** Inserts a new key (state `next` or `active`). */
  addKey(key: SigningKeyRecord, ctx: AuditContext): Promise<void>;
  /**
   * Atomically makes `kid` the only active key (the previous active one becomes `retired`). Rejects if the
   * key is unknown.
   */
  activateKey(kid: string, now: number, ctx: AuditContext): Promise<void>;
  /** Removes a retired key whose grants have all expired. */
  deleteKey(kid: string, ctx: AuditContext): Promise<boolean>;

  // --- grants ---
  /**
   * Atomically: refuse if any of `grant.claims` conflicts with a live claim (an exclusive claim conflicts
   * with any live claim on the same driver and resource, a shared one with a live exclusive claim; a claim is
   * live while its grant is unexpired at `now` and not revoked; claims of `grant.renewedFrom` never conflict,
   * since the renewal takes them over), otherwise record the grant and its claims,
   * raise the signing key's `lastGrantExp`, and audit.
   */
  issueGrant(grant: GrantRecord, now: number, ctx: AuditContext): Promise<IssueResult>;
  getGrant(jti: string): Promise<GrantRecord | undefined>;
  /** Grants of one principal, newest first. */
  listGrants(filter: {
    readonly sub?: string;
    readonly liveAt?: number;
    readonly limit?: number;
  }): Promise<GrantRecord[]>;

  // --- revocations ---
  /**
   * Numbers and records a revocation, marks every matching grant revoked (releasing its claims), and audits.
   * Resolves with the entry and its sequence number.
   */
  revoke(input: RevocationInput, ctx: AuditContext): Promise<RevocationEntry>;
  /** Entries with `seq > after`, in order, and the current head sequence (0 when there is none). */
  listRevocations(after: number): Promise<{ readonly head: number; readonly entries: RevocationEntry[] }>;
  /**
   * Calls `onEntry` for every revocation with `seq > after`, in order, then for new ones as they are written
   * (by this server or, for a shared store, any other). `onError` reports a broken watch (the caller re-lists
   * and re-watches).
   */
  watchRevocations(
    after: number,
    onEntry: (entry: RevocationEntry) => void,
    onError?: (err: Error) => void,
  ): Unsubscribe;

  /**
   * Optional, for stores shared by several servers: calls `onChange` whenever any server changed the signing
   * keys, so every replica reloads them at once (the server also reloads periodically as a fallback).
   */
  watchKeys?(onChange: () => void): Unsubscribe;

  // --- audit ---
  listAudit(after: number, limit: number): Promise<AuditRecord[]>;
}
