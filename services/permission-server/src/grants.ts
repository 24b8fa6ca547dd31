/**
 * Issuing and renewing grants: authenticate (done by the HTTP layer), decide by policy, build the program,
 * sign, and record atomically with the exclusivity claim. The grant is returned only after the store has
 * made it durable.
 */
import { randomFillSync } from 'node:crypto';
import {
  b64urlEncode,
  type Ed25519PublicJwk,
  type GrantClaims,
  importPublicJwk,
  jwkThumbprint,
  signGrant,
} from '@exonet/grant';
import { ServerError } from './errors.ts';
import type { FilterBuilder, RequestedFilter } from './filters.ts';
import type { KeyManager } from './keys.ts';
import type { PolicyCache } from './policy/cache.ts';
import { type Decision, decide, type PolicyRequest, type PolicyView } from './policy/engine.ts';
import type { AuditContext, GrantRecord, Principal, Store } from './store/store.ts';

/** A grant request after schema validation. */
export interface GrantRequest {
  readonly driver: string;
  readonly dir: 'rx' | 'tx';
  readonly layer?: 'task' | 'user' | 'system';
  readonly filter: RequestedFilter;
  readonly holder: unknown;
  readonly port?: number;
  readonly ttl?: number;
  readonly exclusive?: boolean;
  readonly rule?: string;
}

/** What the API returns for an issued grant. */
export interface IssuedGrant {
  readonly id: string;
  readonly grant: string;
  readonly expiresAt: number;
  readonly program: string;
  readonly rule: string;
  readonly exclusive: boolean;
  readonly driver: string;
}

export interface GrantServiceOptions {
  readonly store: Store;
  readonly keys: KeyManager;
  readonly filters: FilterBuilder;
  readonly policy: PolicyCache;
  readonly issuer: string;
  /** Upper bound of every grant's lifetime (the revocation staleness bound), seconds. */
  readonly stalenessSec: number;
  readonly now?: () => number;
  readonly onIssued?: (result: 'issued' | 'denied' | 'conflict' | 'invalid') => void;
}

/**
 * Grant ids: `g_`, the issue time in milliseconds (11 hex digits, so ids sort by time), then 16 bytes of the
 * CSPRNG (base64url). The time prefix makes the store's indexes on the id (the grants' primary key, the
 * claims' jti index) append at one end instead of touching a random leaf page per grant: random ids made
 * every commit rewrite one index page per grant per index into the WAL. The random part keeps ids unguessable
 * and unique. Random bytes come from a pool filled 256 ids at a time; every byte is used once.
 */
const ID_BYTES = 16;
const idPool = Buffer.alloc(ID_BYTES * 256);
let idOffset = idPool.length;

/** A fresh grant id (see above). */
export function grantId(nowMs = Date.now()): string {
  if (idOffset >= idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const random = idPool.toString('base64url', idOffset, idOffset + ID_BYTES);
  idOffset += ID_BYTES;
  return `g_${nowMs.toString(16).padStart(11, '0')}${random}`;
}

const CACHE_LIMIT = 10_000;

/**
 * Policy decisions per (snapshot, principal object, request shape). `decide` is pure, so for one policy
 * snapshot the same principal asking the same thing gets the same decision; a new snapshot (any policy change,
 * or the cache's refresh) is a new WeakMap key, so nothing outlives the policy it was decided under. Only
 * allowed decisions are kept; refusals are recomputed (they carry per-request reasons and are rare).
 */
const decisions = new WeakMap<PolicyView, WeakMap<Principal, Map<string, Decision>>>();

function decideCached(
  principal: Principal,
  driver: Parameters<typeof decide>[1],
  request: PolicyRequest,
  view: PolicyView,
  stalenessSec: number,
): Decision {
  let byPrincipal = decisions.get(view);
  if (!byPrincipal) {
    byPrincipal = new WeakMap();
    decisions.set(view, byPrincipal);
  }
  let byRequest = byPrincipal.get(principal);
  if (!byRequest) {
    byRequest = new Map();
    byPrincipal.set(principal, byRequest);
  }
  const key = `${driver.id}|${request.dir}|${request.layer}|${request.port}|${request.exclusive}|${request.rule}|${request.ttlSec}|${stalenessSec}`;
  let decision = byRequest.get(key);
  if (decision) return decision;
  decision = decide(principal, driver, request, view, stalenessSec);
  if (byRequest.size >= CACHE_LIMIT) byRequest.clear();
  byRequest.set(key, decision);
  return decision;
}

export class GrantService {
  readonly #o: GrantServiceOptions;
  readonly #now: () => number;
  /** RFC 7638 thumbprints of holder keys by their `x` (a pure function of it; bounded). */
  readonly #thumbprints = new Map<string, string>();

  constructor(options: GrantServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Issues a grant or throws a ServerError (400/403/409/503). */
  async issue(
    principal: Principal,
    request: GrantRequest,
    ctx: AuditContext,
    renewedFrom: string | null = null,
  ): Promise<IssuedGrant> {
    try {
      const result = await this.#issue(principal, request, ctx, renewedFrom);
      this.#o.onIssued?.('issued');
      return result;
    } catch (err) {
      const code = err instanceof ServerError ? err.code : '';
      this.#o.onIssued?.(
        code === 'EXO_ERR_POLICY_DENIED' ? 'denied' : code === 'EXO_ERR_GRANT_CONFLICT' ? 'conflict' : 'invalid',
      );
      throw err;
    }
  }

  async #issue(
    principal: Principal,
    request: GrantRequest,
    ctx: AuditContext,
    renewedFrom: string | null,
  ): Promise<IssuedGrant> {
    const holder = importPublicJwk(request.holder);
    if (!holder.ok) throw new ServerError('EXO_ERR_GRANT_HOLDER_KEY', `holder key refused: ${holder.reason}`);
    const holderJwk: Ed25519PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: b64urlEncode(holder.publicKey) };
    let jkt = this.#thumbprints.get(holderJwk.x);
    if (jkt === undefined) {
      jkt = jwkThumbprint(holderJwk);
      if (this.#thumbprints.size >= CACHE_LIMIT) this.#thumbprints.clear();
      this.#thumbprints.set(holderJwk.x, jkt);
    }
    const view = await this.#o.policy.view();
    const driver = view.drivers.get(request.driver);
    if (!driver) throw new ServerError('EXO_ERR_GRANT_DRIVER_UNKNOWN', `no driver ${request.driver}`);
    const decision = decideCached(
      principal,
      driver,
      {
        driver: request.driver,
        dir: request.dir,
        layer: request.layer ?? 'task',
        port: request.port,
        exclusive: request.exclusive,
        rule: request.rule,
        ttlSec: request.ttl,
      },
      view,
      this.#o.stalenessSec,
    );
    const program = this.#o.filters.build(decision.filter, request.filter);
    const key = this.#o.keys.activeKey();
    const iat = this.#now();
    const claims: GrantClaims = {
      iss: this.#o.issuer,
      sub: principal.id,
      aud: driver.id,
      iat,
      nbf: iat,
      exp: iat + decision.lifetimeSec,
      jti: grantId(),
      cnf: { jkt },
      dir: request.dir,
      layer: request.layer ?? 'task',
      bpf: b64urlEncode(program),
      excl: decision.exclusive,
      rule: decision.rule.id,
    };
    const jws = signGrant(claims, key);
    const record: GrantRecord = {
      jti: claims.jti,
      sub: claims.sub,
      driver: claims.aud,
      dir: claims.dir,
      layer: claims.layer,
      rule: claims.rule,
      kid: key.kid,
      cnfJkt: claims.cnf.jkt,
      holderJwk: { kty: 'OKP', crv: 'Ed25519', x: holderJwk.x },
      requestedFilter:
        'expression' in request.filter ? request.filter.expression : `bpf:${b64urlEncode(request.filter.program)}`,
      port: decision.port,
      bpf: claims.bpf,
      exclusive: claims.excl,
      claims: [{ driver: driver.id, resource: decision.resource, mode: decision.exclusive ? 'exclusive' : 'shared' }],
      iat,
      nbf: iat,
      exp: claims.exp,
      jws,
      renewedFrom,
      revokedSeq: null,
    };
    const stored = await this.#o.store.issueGrant(record, iat, ctx);
    if (!stored.ok) {
      throw new ServerError(
        'EXO_ERR_GRANT_CONFLICT',
        `${decision.resource} on ${driver.id} is held by grant ${stored.conflicting.jti}`,
        {
          resource: stored.conflicting.resource,
        },
      );
    }
    this.#o.keys.noteGrant(key.kid, claims.exp);
    return {
      id: claims.jti,
      grant: jws,
      expiresAt: claims.exp,
      program: claims.bpf,
      rule: claims.rule,
      exclusive: claims.excl,
      driver: driver.id,
    };
  }

  /** A fresh grant for the same filter, holder and driver, while the policy still allows it. */
  async renew(principal: Principal, id: string, ttl: number | undefined, ctx: AuditContext): Promise<IssuedGrant> {
    const old = await this.#o.store.getGrant(id);
    // The holder only: a principal learns nothing about other principals' grant ids.
    if (!old || old.sub !== principal.id) throw new ServerError('EXO_ERR_GRANT_NOT_FOUND');
    if (old.revokedSeq !== null || old.exp <= this.#now()) throw new ServerError('EXO_ERR_GRANT_NOT_RENEWABLE');
    const filter: RequestedFilter = old.requestedFilter.startsWith('bpf:')
      ? { program: Buffer.from(old.requestedFilter.slice(4), 'base64url') }
      : { expression: old.requestedFilter };
    return this.issue(
      principal,
      {
        driver: old.driver,
        dir: old.dir,
        layer: old.layer,
        filter,
        holder: old.holderJwk,
        port: old.port ?? undefined,
        ttl,
        exclusive: old.exclusive,
        rule: old.rule,
      },
      ctx,
      old.jti,
    );
  }
}
