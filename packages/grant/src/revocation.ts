/**
 * Signed revocation lists (a CRL-like model: a monotonic sequence number and a valid-until), their
 * verification, and the set a driver keeps. A driver whose list is older than the staleness bound fails
 * CLOSED; every grant lives at most that bound, so a revoked grant cannot outlive a lost feed.
 */
import type { SigningKey } from './ed25519.ts';
import { type Failure, fail } from './errors.ts';
import type { GrantClaims } from './grant.ts';
import { DEFAULT_CLOCK_TOLERANCE_SEC } from './grant.ts';
import type { KeySet } from './jwks.ts';
import { signCompact, verifyCompact } from './jws.ts';

/** The JWS `typ` of a revocation list. */
export const REVOCATION_TYP = 'exonet-revocations+jwt';

/** What a revocation entry names. */
export type RevocationKind = 'jti' | 'sub' | 'rule' | 'kid';

/** One revocation. */
export interface RevocationListEntry {
  /** Its sequence number (strictly increasing, not necessarily dense). */
  readonly seq: number;
  readonly kind: RevocationKind;
  readonly value: string;
  /** Unix seconds: `sub` and `rule` entries revoke grants with `iat <= at`; `jti` and `kid` any. */
  readonly at: number;
  /** Unix seconds after which no grant this entry matches can still be valid (it may then be dropped). */
  readonly until: number;
}

/** The signed list's claims, in serialisation order. */
export interface RevocationList {
  readonly iss: string;
  /** Head sequence number of the issuer at signing time (>= every entry's seq). */
  readonly seq: number;
  /** The entries are all revocations with seq > after that are still relevant. */
  readonly after: number;
  readonly iat: number;
  /** Unix seconds: a verifier must not rely on this list (or its absence of entries) after this time. */
  readonly valid_until: number;
  readonly entries: readonly RevocationListEntry[];
}

const ID = /^[A-Za-z0-9._:@~-]{1,128}$/;
const KINDS = new Set(['jti', 'sub', 'rule', 'kid']);
const MAX_ENTRIES = 100_000;

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Why the value is not a well-formed revocation list, or undefined. */
export function revocationListProblem(list: Record<string, unknown>): string | undefined {
  if (typeof list.iss !== 'string' || !ID.test(list.iss)) return 'iss is not an identifier';
  for (const name of ['seq', 'after', 'iat', 'valid_until'] as const) {
    if (!isUint(list[name])) return `${name} is not a non-negative integer`;
  }
  if ((list.after as number) > (list.seq as number)) return 'after exceeds seq';
  if (!Array.isArray(list.entries) || list.entries.length > MAX_ENTRIES) return 'entries is not an array';
  let previous = list.after as number;
  for (const e of list.entries as Record<string, unknown>[]) {
    if (e === null || typeof e !== 'object') return 'an entry is not an object';
    if (!isUint(e.seq) || e.seq <= previous || e.seq > (list.seq as number))
      return 'entry seqs are not increasing within (after, seq]';
    previous = e.seq;
    if (typeof e.kind !== 'string' || !KINDS.has(e.kind)) return 'entry kind is not jti, sub, rule or kid';
    if (typeof e.value !== 'string' || !ID.test(e.value)) return 'entry value is not an identifier';
    if (!isUint(e.at) || !isUint(e.until)) return 'entry at/until are not non-negative integers';
  }
  return undefined;
}

/** Signs a revocation list (header typ "exonet-revocations+jwt"). */
export function signRevocationList(list: RevocationList, key: SigningKey): string {
  const ordered = {
    iss: list.iss,
    seq: list.seq,
    after: list.after,
    iat: list.iat,
    valid_until: list.valid_until,
    entries: list.entries.map((e) => ({ seq: e.seq, kind: e.kind, value: e.value, at: e.at, until: e.until })),
  };
  const problem = revocationListProblem(ordered);
  if (problem) throw new TypeError(`cannot sign revocation list: ${problem}`);
  return signCompact(REVOCATION_TYP, ordered, key);
}

/** Options of {@link verifyRevocationList}. */
export interface VerifyRevocationListOptions {
  readonly jwks: KeySet | unknown;
  /** The sequence number the verifier already holds: an older list is refused, and so is a gap (after > afterSeq). */
  readonly afterSeq?: number;
  readonly now?: number;
  readonly clockToleranceSec?: number;
  readonly issuer?: string;
}

/**
 * Verifies a signed revocation list: strict JWS (as for grants, typ "exonet-revocations+jwt"), well-formed
 * claims, issuer, not issued in the future, not past valid_until, and, when `afterSeq` is given, neither older
 * than what the verifier holds (seq < afterSeq) nor leaving a gap (after > afterSeq). Never throws.
 */
export function verifyRevocationList(
  jws: unknown,
  options: VerifyRevocationListOptions,
): { ok: true; list: RevocationList; kid: string } | Failure {
  const verified = verifyCompact(jws, REVOCATION_TYP, options.jwks, 'REVOCATION');
  if (!verified.ok) return verified;
  const problem = revocationListProblem(verified.payload);
  if (problem) return fail('EXO_ERR_REVOCATION_MALFORMED', problem);
  const list = verified.payload as unknown as RevocationList;
  if (options.issuer !== undefined && list.iss !== options.issuer)
    return fail('EXO_ERR_REVOCATION_MALFORMED', 'iss is not the expected issuer');
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = Math.min(Math.max(options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC, 0), 300);
  if (list.iat > now + tolerance) return fail('EXO_ERR_REVOCATION_MALFORMED', 'iat is in the future');
  if (list.valid_until <= now - tolerance) return fail('EXO_ERR_REVOCATION_EXPIRED');
  if (options.afterSeq !== undefined) {
    if (list.seq < options.afterSeq)
      return fail('EXO_ERR_REVOCATION_STALE', `list seq ${list.seq} is older than ${options.afterSeq}`);
    if (list.after > options.afterSeq)
      return fail('EXO_ERR_REVOCATION_STALE', `list starts after ${list.after}, held ${options.afterSeq}: gap`);
  }
  return { ok: true, list, kid: verified.header.kid };
}

/**
 * The revocations a driver holds, fed with verified lists. `isRevoked` plugs into verifyGrant; `isFresh`
 * tells whether the held list is still within its valid-until (if not, the driver suspends its filters).
 */
export class RevocationSet {
  #seq = 0;
  #validUntil = 0;
  readonly #jti = new Map<string, number>();
  readonly #kid = new Map<string, number>();
  readonly #sub = new Map<string, RevocationListEntry[]>();
  readonly #rule = new Map<string, RevocationListEntry[]>();

  /** Sequence number held (0 before the first list). */
  get seq(): number {
    return this.#seq;
  }
  /** valid_until of the newest list applied. */
  get validUntil(): number {
    return this.#validUntil;
  }

  /** Merges a VERIFIED list (verifyRevocationList with afterSeq = this.seq). */
  apply(list: RevocationList): void {
    for (const e of list.entries) {
      if (e.seq <= this.#seq) continue;
      if (e.kind === 'jti') this.#jti.set(e.value, e.until);
      else if (e.kind === 'kid') this.#kid.set(e.value, e.until);
      else {
        const map = e.kind === 'sub' ? this.#sub : this.#rule;
        const list = map.get(e.value) ?? [];
        list.push(e);
        map.set(e.value, list);
      }
    }
    this.#seq = Math.max(this.#seq, list.seq);
    this.#validUntil = Math.max(this.#validUntil, list.valid_until);
  }

  /** True while the held list is valid at `now` (unix seconds). */
  isFresh(now = Math.floor(Date.now() / 1000)): boolean {
    return now < this.#validUntil;
  }

  /** Whether a grant is revoked by any held entry. */
  isRevoked = (claims: GrantClaims, kid: string): boolean => {
    if (this.#jti.has(claims.jti) || this.#kid.has(kid)) return true;
    for (const e of this.#sub.get(claims.sub) ?? []) if (claims.iat <= e.at) return true;
    for (const e of this.#rule.get(claims.rule) ?? []) if (claims.iat <= e.at) return true;
    return false;
  };

  /** Drops entries that can no longer match a valid grant. */
  prune(now = Math.floor(Date.now() / 1000)): void {
    for (const map of [this.#jti, this.#kid]) for (const [k, until] of map) if (until < now) map.delete(k);
    for (const map of [this.#sub, this.#rule]) {
      for (const [k, list] of map) {
        const kept = list.filter((e) => e.until >= now);
        if (kept.length === 0) map.delete(k);
        else map.set(k, kept);
      }
    }
  }
}
