/**
 * Revocation: recording (by grant id, principal, rule or key) and the signed feed, pulled (`?after=N`) or
 * pushed (server-sent events). Every list is signed with the active key and valid for `listValiditySec`
 * (never longer than the staleness bound), so a driver that stops hearing from us knows when to fail closed.
 */
import { type RevocationList, type RevocationListEntry, signRevocationList } from '@exonet/grant';
import type { KeyManager } from './keys.ts';
import type { AuditContext, RevocationEntry, RevocationKind, Store, Unsubscribe } from './store/store.ts';

export interface RevocationServiceOptions {
  readonly store: Store;
  readonly keys: KeyManager;
  readonly issuer: string;
  readonly stalenessSec: number;
  /** How long a signed list is valid (default: min(60, stalenessSec)). */
  readonly listValiditySec?: number;
  readonly toleranceSec?: number;
  readonly now?: () => number;
}

function toListEntry(e: RevocationEntry): RevocationListEntry {
  return { seq: e.seq, kind: e.kind, value: e.value, at: e.at, until: e.until };
}

export class RevocationService {
  readonly #o: RevocationServiceOptions;
  readonly #now: () => number;
  readonly #validity: number;

  constructor(options: RevocationServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#validity = Math.max(1, Math.min(options.listValiditySec ?? 60, options.stalenessSec));
  }

  /** Records a revocation; when it names the active key, a new key takes over at once. */
  async revoke(kind: RevocationKind, value: string, reason: string, ctx: AuditContext): Promise<RevocationEntry> {
    const at = this.#now();
    // Every grant lives at most stalenessSec: after that nothing the entry matches can be valid.
    const until = at + this.#o.stalenessSec + (this.#o.toleranceSec ?? 5);
    const entry = await this.#o.store.revoke({ kind, value, at, until, reason }, ctx);
    if (kind === 'kid' && this.#o.keys.records().some((k) => k.kid === value && k.state === 'active')) {
      await this.#o.keys.rotate(ctx, true);
    } else if (kind === 'kid') {
      await this.#o.keys.reload();
    }
    return entry;
  }

  /** The signed list of still-relevant entries after `after`. */
  async signedList(after: number): Promise<{ jws: string; list: RevocationList }> {
    const { head, entries } = await this.#o.store.listRevocations(after);
    return this.sign(after, Math.max(head, after), entries);
  }

  /** Signs a list of `entries` (seq in (after, seq]) with the active key. */
  sign(after: number, seq: number, entries: readonly RevocationEntry[]): { jws: string; list: RevocationList } {
    const now = this.#now();
    const list: RevocationList = {
      iss: this.#o.issuer,
      seq,
      after,
      iat: now,
      valid_until: now + this.#validity,
      // Entries whose every possible target has expired are left out: they can no longer matter.
      entries: entries.filter((e) => e.until >= now).map(toListEntry),
    };
    return { jws: signRevocationList(list, this.#o.keys.activeKey()), list };
  }

  /** Seconds a list stays valid. */
  get listValiditySec(): number {
    return this.#validity;
  }

  /**
   * Push feed: sends the signed backlog after `after` (with the true head), then one signed list per batch of
   * new revocations (entries written in the same turn share a list), each continuing where the previous
   * ended. `heartbeat()` sends an empty list at the current position, refreshing valid_until.
   */
  async subscribe(
    after: number,
    send: (jws: string, seq: number) => void,
    onError: (err: Error) => void,
  ): Promise<{ stop: Unsubscribe; heartbeat: () => void }> {
    const initial = await this.signedList(after);
    let last = initial.list.seq;
    send(initial.jws, last);
    let pending: RevocationEntry[] = [];
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      const seq = batch[batch.length - 1]!.seq;
      try {
        const { jws } = this.sign(last, seq, batch);
        last = seq;
        send(jws, seq);
      } catch (err) {
        onError(err as Error);
      }
    };
    const stop = this.#o.store.watchRevocations(
      last,
      (entry) => {
        pending.push(entry);
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(flush);
        }
      },
      onError,
    );
    const heartbeat = () => {
      if (scheduled) return;
      try {
        send(this.sign(last, last, []).jws, last);
      } catch (err) {
        onError(err as Error);
      }
    };
    return { stop, heartbeat };
  }
}
