/**
 * A self-healing watch of the revocation records in etcd that never misses or repeats an entry.
 *
 * Invariant: every entry with `seq <= cursor` has been delivered, in order, and nothing above it. It holds
 * because each source is complete and ordered: a re-list returns every record created after the cursor up
 * to the revision it read; the one live watcher starts right after that revision and delivers every later
 * PUT in revision order. Entries at or below the cursor are skipped, so overlaps are harmless.
 *
 * Broken watches are repaired here: on a compacted start revision (etcd cancels the watcher; the etcd3
 * client emits `error` and drops it), a dropped stream or a cancelled watcher, the watcher is discarded
 * (never left to the client's own reconnect, which resumes from the revision of its last *header*, not of
 * the last event delivered) and we re-list from the cursor and re-watch from the list's revision. Re-listing
 * reads current keys, not history, so compaction cannot lose an entry. A periodic re-list covers the case
 * of a silently stuck stream (and etcd #18089-style lost events). Revocations are PUTs; DELETE events (old
 * records dropped after their `until`) are ignored.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { RevocationEntry, Unsubscribe } from './store.ts';

/** What the watch needs from the store. */
export interface RevocationSource {
  readonly client: Etcd3;
  /** Key prefix of the revocation records. */
  readonly prefix: string;
  /** Entries with seq > after, in order, and the revision the read saw. */
  list(after: number): Promise<{ entries: RevocationEntry[]; revision: number }>;
  /** Decodes one watched record (undefined: not a revocation record). */
  decode(kv: IKeyValue): RevocationEntry | undefined;
}

/** Tuning of {@link watchRevocationRecords}. */
export interface RevocationWatchOptions {
  /** Periodic re-list while the watch is up (default 2 s). */
  readonly resyncMs?: number;
  /** First and longest retry delay after a failure (default 100 ms and 2 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** A running revocation watch. */
export interface RevocationWatch {
  /** Stops it; no entry is delivered afterwards. */
  readonly stop: Unsubscribe;
  /**
   * Makes sure every entry up to `seq` has been delivered (re-lists if the watch has not seen it yet). The
   * store calls it after its own revocations, so a replica's own feed never waits for the watch round trip.
   */
  catchUp(seq: number): Promise<void>;
}

/**
 * Delivers every revocation with `seq > after` and then every new one, in order, until stopped.
 * `onError` is called once per outage (the watch keeps repairing itself; callers may also re-subscribe
 * from their own last seq, which is equally safe).
 */
export function watchRevocationRecords(
  source: RevocationSource,
  after: number,
  onEntry: (entry: RevocationEntry) => void,
  onError: ((err: Error) => void) | undefined,
  options: RevocationWatchOptions = {},
): RevocationWatch {
  const resyncMs = options.resyncMs ?? 2000;
  const retryMinMs = options.retryMinMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 2000;
  let cursor = after;
  let stopped = false;
  let watcher: Watcher | null = null;
  /** Bumped whenever the current watcher is abandoned, so late events of an old watcher are ignored. */
  let generation = 0;
  let retryMs = retryMinMs;
  let reported = false;
  let timer: NodeJS.Timeout | null = null;
  let resyncRunning = false;

  const deliver = (entry: RevocationEntry) => {
    if (stopped || entry.seq <= cursor) return;
    cursor = entry.seq;
    try {
      onEntry(entry);
    } catch {
      // A throwing consumer must not break the watch for the others; it sees the next entries still.
    }
  };

  const report = (err: unknown) => {
    if (reported || stopped || !onError) return;
    reported = true;
    try {
      onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // ignore consumer errors
    }
  };

  const dropWatcher = () => {
    generation++;
    const old = watcher;
    watcher = null;
    if (old) {
      old.removeAllListeners();
      // Keep a no-op error listener: a late `error` on an EventEmitter without one would throw.
      old.on('error', () => {});
      old.cancel().catch(() => {});
    }
  };

  const schedule = (fn: () => void, ms: number) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (!stopped) fn();
    }, ms);
  };

  const fail = (err: unknown) => {
    if (stopped) return;
    dropWatcher();
    report(err);
    schedule(() => void connect(), retryMs);
    retryMs = Math.min(retryMs * 2, retryMaxMs);
  };

  const connect = async () => {
    if (stopped) return;
    const myGeneration = ++generation;
    try {
      const { entries, revision } = await source.list(cursor);
      if (stopped || myGeneration !== generation) return;
      for (const entry of entries) deliver(entry);
      const w = source.client
        .watch()
        .prefix(source.prefix)
        .startRevision(String(revision + 1))
        .watcher();
      watcher = w;
      w.on('put', (kv) => {
        if (myGeneration !== generation) return;
        const entry = source.decode(kv);
        if (entry) deliver(entry);
      });
      w.on('connected', () => {
        if (myGeneration !== generation) return;
        reported = false;
        retryMs = retryMinMs;
      });
      w.on('error', (err) => {
        if (myGeneration === generation) fail(err);
      });
      w.on('disconnected', (err) => {
        if (myGeneration === generation) fail(err);
      });
      schedule(resync, resyncMs);
    } catch (err) {
      if (myGeneration === generation) fail(err);
    }
  };

  /** The periodic safety net: re-list from the cursor while the watcher runs. */
  const resync = async () => {
    if (stopped || resyncRunning) return;
    resyncRunning = true;
    const myGeneration = generation;
    try {
      const { entries } = await source.list(cursor);
      if (!stopped && myGeneration === generation) for (const entry of entries) deliver(entry);
      if (!stopped && myGeneration === generation) schedule(resync, resyncMs);
    } catch (err) {
      if (myGeneration === generation) fail(err);
    } finally {
      resyncRunning = false;
    }
  };

  /**
   * Safe at any time: a list requested at cursor c is complete from c to the revision it read, and the
   * cursor never falls, so delivering only entries above the current cursor leaves no gap.
   */
  const catchUp = async (seq: number) => {
    if (stopped || cursor >= seq) return;
    try {
      const { entries } = await source.list(cursor);
      for (const entry of entries) deliver(entry);
    } catch {
      // The watch repairs itself; the caller's write has committed either way.
    }
  };

  void connect();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      dropWatcher();
    },
    catchUp,
  };
}
