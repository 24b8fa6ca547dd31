/**
 * A short-lived snapshot of the policy for the hot path. Local changes invalidate it at once; with a shared
 * store, changes made by another server become visible within `maxAgeMs` (default 1 s).
 */
import type { Driver, Group, Principal, Rule, Store } from '../store/store.ts';
import type { PolicyView } from './engine.ts';

interface Snapshot extends PolicyView {
  readonly at: number;
  readonly principals: ReadonlyMap<string, Principal>;
  readonly drivers: ReadonlyMap<string, Driver>;
}

export class PolicyCache {
  readonly #store: Store;
  readonly #maxAgeMs: number;
  #snapshot: Snapshot | undefined;
  #loading: Promise<Snapshot> | undefined;

  constructor(store: Store, maxAgeMs = 1000) {
    this.#store = store;
    this.#maxAgeMs = maxAgeMs;
  }

  invalidate(): void {
    this.#snapshot = undefined;
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
