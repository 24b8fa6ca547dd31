/**
 * "Something under this prefix changed": a self-healing etcd watch for caches that simply reload (signing
 * keys, policy). Every PUT or DELETE under the prefix calls `onChange`; so does every re-established watch
 * (changes may have been missed while it was down) and a periodic safety tick, because a cache reload is
 * cheap and idempotent while a missed change (etcd #18089: lost DELETE events) would not be.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Unsubscribe } from './store.ts';

/** Options of {@link watchChanges}. */
export interface ChangeWatchOptions {
  /** Safety reload interval (default 30 s). */
  readonly periodicMs?: number;
  /** Retry delay after a broken watch (default 500 ms). */
  readonly retryMs?: number;
}

/** Calls `onChange` (debounced to one call per event-loop turn) whenever keys under `prefix` change. */
export function watchChanges(
  client: Etcd3,
  prefix: string,
  onChange: () => void,
  options: ChangeWatchOptions = {},
): Unsubscribe {
  let stopped = false;
  let watcher: Watcher | null = null;
  let retry: NodeJS.Timeout | null = null;
  let queued = false;
  const fire = () => {
    if (queued || stopped) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      if (stopped) return;
      try {
        onChange();
      } catch {
        // the consumer's problem; keep watching
      }
    });
  };
  const drop = () => {
    const old = watcher;
    watcher = null;
    if (old) {
      old.removeAllListeners();
      old.on('error', () => {});
      old.cancel().catch(() => {});
    }
  };
  const connect = () => {
    if (stopped) return;
    const w = client.watch().prefix(prefix).watcher();
    watcher = w;
    let wasConnected = false;
    w.on('connected', () => {
      // The first connect and every reconnect: anything may have changed meanwhile.
      if (wasConnected) fire();
      wasConnected = true;
    });
    w.on('put', fire);
    w.on('delete', fire);
    const broken = () => {
      if (watcher !== w || stopped) return;
      drop();
      fire();
      retry = setTimeout(connect, options.retryMs ?? 500);
    };
    w.on('error', broken);
    w.on('disconnected', broken);
  };
  const periodic = setInterval(fire, options.periodicMs ?? 30_000);
  periodic.unref?.();
  connect();
  return () => {
    stopped = true;
    clearInterval(periodic);
    if (retry) clearTimeout(retry);
    drop();
  };
}
