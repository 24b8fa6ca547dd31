/**
 * One etcd revocation watch per replica, fanned out to every subscriber (every SSE client of the replica),
 * instead of one etcd watch and one periodic re-list per subscriber.
 *
 * The hub's watch starts at the head it read when it started. A subscriber attaches to the hub, waits until
 * that starting point is fixed, then lists its own backlog (`seq > after`, a linearizable read, so it covers
 * everything up to at least the hub's start); hub deliveries that arrive meanwhile are queued and delivered
 * after it. Backlog plus hub cover every seq above `after`; a per-subscriber cursor drops duplicates.
 */
import type { RevocationWatch } from './etcd-watch.ts';
import type { RevocationEntry, Unsubscribe } from './store.ts';

interface Subscriber {
  cursor: number;
  syncing: boolean;
  queue: RevocationEntry[];
  synced: Promise<void>;
  readonly onEntry: (entry: RevocationEntry) => void;
  readonly onError?: (err: Error) => void;
}

/** What the hub needs from the store. */
export interface HubSource {
  /** The current head sequence. */
  head(): Promise<number>;
  /** Entries with seq > after, in order. */
  list(after: number): Promise<RevocationEntry[]>;
  /** Starts the shared self-healing watch after `after`. */
  watch(after: number, onEntry: (e: RevocationEntry) => void, onError: (err: Error) => void): RevocationWatch;
}

/** The fan-out of one store's revocation watch. */
export class RevocationHub {
  readonly #subscribers = new Set<Subscriber>();
  #watch: RevocationWatch | null = null;
  #starting: Promise<void> | null = null;
  #generation = 0;

  constructor(private readonly source: HubSource) {}

  /** Number of live subscribers. */
  get size(): number {
    return this.#subscribers.size;
  }

  /** Every entry with seq > after, then every new one, in order, until unsubscribed. */
  subscribe(after: number, onEntry: (e: RevocationEntry) => void, onError?: (err: Error) => void): Unsubscribe {
    const sub: Subscriber = { cursor: after, syncing: true, queue: [], synced: Promise.resolve(), onEntry, onError };
    this.#subscribers.add(sub);
    this.#ensureWatch();
    const starting = this.#starting;
    sub.synced = (async () => {
      try {
        // The backlog read must not precede the hub's starting point (its head read): an entry committed
        // between the two would be in neither.
        if (starting) await starting.catch(() => {});
        const backlog = await this.source.list(after);
        for (const e of backlog) this.#deliver(sub, e);
      } catch (err) {
        this.#fail(sub, err);
      } finally {
        sub.syncing = false;
        const queued = sub.queue;
        sub.queue = [];
        for (const e of queued) this.#deliver(sub, e);
      }
    })();
    return () => {
      this.#subscribers.delete(sub);
      sub.queue = [];
      if (this.#subscribers.size === 0) this.#stopWatch();
    };
  }

  /**
   * Resolves once every subscriber holds everything up to `seq` (the store calls it after its own
   * revocations, before answering the client).
   */
  async catchUp(seq: number): Promise<void> {
    if (this.#starting) await this.#starting.catch(() => {});
    await this.#watch?.catchUp(seq);
    await Promise.all([...this.#subscribers].map((s) => s.synced));
  }

  /** Stops the shared watch and drops every subscriber. */
  stop(): void {
    this.#subscribers.clear();
    this.#stopWatch();
  }

  #deliver(sub: Subscriber, entry: RevocationEntry): void {
    if (!this.#subscribers.has(sub) || entry.seq <= sub.cursor) return;
    sub.cursor = entry.seq;
    try {
      sub.onEntry(entry);
    } catch {
      // one subscriber's failure must not affect the others
    }
  }

  #fail(sub: Subscriber, err: unknown): void {
    if (!this.#subscribers.has(sub)) return;
    try {
      sub.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // ignore
    }
  }

  #ensureWatch(): void {
    if (this.#watch || this.#starting) return;
    const generation = ++this.#generation;
    // Start at the current head: each subscriber lists its own backlog, the hub only carries what is new.
    this.#starting = (async () => {
      let head = 0;
      for (;;) {
        try {
          head = await this.source.head();
          break;
        } catch (err) {
          for (const sub of [...this.#subscribers]) this.#fail(sub, err);
          if (generation !== this.#generation || this.#subscribers.size === 0) return;
          await new Promise((r) => setTimeout(r, 500));
          if (generation !== this.#generation || this.#subscribers.size === 0) return;
        }
      }
      if (generation !== this.#generation) return;
      this.#watch = this.source.watch(
        head,
        (entry) => {
          for (const sub of this.#subscribers) {
            if (sub.syncing) sub.queue.push(entry);
            else this.#deliver(sub, entry);
          }
        },
        (err) => {
          for (const sub of [...this.#subscribers]) this.#fail(sub, err);
        },
      );
    })().finally(() => {
      if (generation === this.#generation) this.#starting = null;
    });
  }

  #stopWatch(): void {
    this.#generation++;
    this.#starting = null;
    this.#watch?.stop();
    this.#watch = null;
  }
}
