/**
 * A short-lived snapshot of the policy for the hot path. Local changes invalidate it at once; with a shared
 * store, changes made by another server become visible within `maxAgeMs` (default 1 s).
 *
 * Bearer tokens are cached here too (token hash -> token record, found tokens only): a token's lookup was a
 * store read on every request. The cache follows the snapshot's rules: cleared by `invalidate()` (every local
 * token or principal change calls it) and at least every `maxAgeMs`, so a token deleted through another server
 * stops working within the same bound as a disabled principal. The caller still compares the stored hash in
 * constant time.
 */
import type { Driver, Group, Principal, Rule, Store, TokenRecord } from '../store/store.ts';
import type { PolicyView } from './engine.ts';

interface Snapshot extends PolicyView {
  readonly at: number;
  readonly principals: ReadonlyMap<string, Principal>;
  readonly drivers: ReadonlyMap<string, Driver>;
}

const TOKEN_CACHE_LIMIT = 100_000;

export class PolicyCache {
  readonly #store: Store;
  readonly #maxAgeMs: number;
  #snapshot: Snapshot | undefined;
  #loading: Promise<Snapshot> | undefined;
  readonly #tokens = new Map<string, TokenRecord>();
  #tokensAt = 0;
  /** Bumped by invalidate(): a lookup that started before an invalidation must not refill the cache. */
  #generation = 0;

  constructor(store: Store, maxAgeMs = 1000) {
    this.#store = store;
    this.#maxAgeMs = maxAgeMs;
  }

  /** Forgets the snapshot and every cached token (call after any policy or token change). */
  invalidate(): void {
    this.#snapshot = undefined;
    this.#tokens.clear();
    this.#generation++;
  }

  /** The token record with this SHA-256 hash (hex), from the cache or the store; undefined when unknown. */
  async token(hash: string): Promise<TokenRecord | undefined> {
    const now = Date.now();
    if (now - this.#tokensAt >= this.#maxAgeMs) {
      this.#tokens.clear();
      this.#tokensAt = now;
    }
    const cached = this.#tokens.get(hash);
    if (cached) return cached;
    const generation = this.#generation;
    const record = await this.#store.findToken(hash);
    // Unknown tokens are not remembered (guessing must not fill memory); known ones are bounded by the
    // number of tokens issued, and the map is dropped when it grows past TOKEN_CACHE_LIMIT anyway.
    if (record && generation === this.#generation) {
      if (this.#tokens.size >= TOKEN_CACHE_LIMIT) this.#tokens.clear();
      this.#tokens.set(hash, record);
    }
    return record;
  }

  async view(): Promise<Snapshot> {
    const s = this.#snapshot;
    if (s && Date.now() - s.at < this.#maxAgeMs) return s;
    if (!this.#loading) {
      this.#loading = this.#load().finally(() => {
        this.#loading = undefined;
      });
    }
    return this.#loading;
  }

  async #load(): Promise<Snapshot> {
    const at = Date.now();
    const [principals, groups, rules, drivers] = await Promise.all([
      this.#store.list('principals'),
      this.#store.list('groups'),
      this.#store.list('rules'),
      this.#store.list('drivers'),
    ]);
    const snapshot: Snapshot = {
      at,
      principals: new Map(principals.map((p) => [p.id, p])),
      groups: new Map<string, Group>(groups.map((g) => [g.id, g])),
      rules: rules as Rule[],
      drivers: new Map(drivers.map((d) => [d.id, d])),
    };
    this.#snapshot = snapshot;
    return snapshot;
  }

  async principal(id: string): Promise<Principal | undefined> {
    return (await this.view()).principals.get(id);
  }
}
