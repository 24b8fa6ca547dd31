/**
 * A driver's view of the signed revocation feed of a replicated permission server: it follows one replica
 * at a time (push: `GET /v1/revocations/stream`, server-sent events; pull: `GET /v1/revocations?after=N`
 * after every (re)connect and periodically), verifies every list with {@link verifyRevocationList}, moves to
 * the next replica when its replica fails (network error, HTTP error, a list that does not verify), resumes
 * from its last sequence number, and reports staleness so the driver can fail CLOSED.
 *
 * Never missing an entry rests on two rules: a list is applied only if it starts at or below what is held
 * (`after <= lastSeq`; a list with a gap triggers a pull from `lastSeq` instead), and every (re)connect
 * pulls from `lastSeq` before trusting the stream. The sequence is cluster-wide (the etcd revision), so any
 * replica can continue where another stopped.
 *
 * Staleness: the follower is fresh while `now < validUntil` of the newest verified list AND (if
 * `stalenessBoundMs` is set) the last verified list arrived less than that bound ago. When it turns stale,
 * `onStale` fires and `staleSince` is set: a driver suspends (or removes) its filters then; grants live at
 * most the staleness bound, so a revoked grant can never stay usable through a lost feed.
 *
 * @example
 * ```ts
 * const follower = new FeedFollower({
 *   urls: ['http://a:8443', 'http://b:8443'],
 *   issuer: 'exonet-cluster',
 *   stalenessBoundMs: 60_000,
 *   onEntries: (entries) => { for (const e of entries) driver.removeMatching(e); },
 *   onStale: () => driver.suspendAll(),
 *   onFresh: () => driver.resume(),
 * });
 * follower.start();
 * // verifyGrant(..., { isRevoked: follower.revocations.isRevoked, ... })
 * await follower.close();
 * ```
 */
import { createKeySet, type KeySet } from './jwks.ts';
import { type RevocationList, type RevocationListEntry, RevocationSet, verifyRevocationList } from './revocation.ts';

/** Why the follower left a replica or refused a list (reported through `onError`; it keeps going). */
export class FeedError extends Error {
  constructor(
    /** Stable code: EXO_ERR_FEED_UNAVAILABLE (network/HTTP), EXO_ERR_FEED_INVALID (a list did not verify). */
    readonly code: 'EXO_ERR_FEED_UNAVAILABLE' | 'EXO_ERR_FEED_INVALID',
    /** The replica it concerns. */
    readonly url: string,
    message: string,
  ) {
    super(message);
    this.name = 'FeedError';
  }
}

/** Options of {@link FeedFollower}. */
export interface FeedFollowerOptions {
  /** Base URLs of the permission-server replicas (e.g. `http://127.0.0.1:8443`), tried in order. */
  readonly urls: readonly string[];
  /**
   * The verification keys: a JWKS document, a KeySet, or a loader called at start and again (at most every
   * `jwksRefreshMs`) when a list names an unknown key. Default: fetch `/.well-known/jwks.json` from the
   * replica being followed.
   */
  readonly jwks?: unknown | ((url: string) => Promise<unknown>);
  /** Expected `iss` of the lists (strongly recommended). */
  readonly issuer?: string;
  /** Resume after this sequence number (default 0: everything still relevant). */
  readonly afterSeq?: number;
  /** Maximum age of the last verified list before the follower reports stale (default: valid_until only). */
  readonly stalenessBoundMs?: number;
  /** Pull interval while following (default 2000 ms): keeps valid_until advancing without revocations. */
  readonly refreshMs?: number;
  /** Reconnect delay after every replica failed once in a row: starts here, doubles up to the max. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** A stream without any bytes (events or comments) this long is treated as dead (default 30 s). */
  readonly streamIdleMs?: number;
  /** Timeout of a pull or a stream connect (default 5000 ms). */
  readonly requestTimeoutMs?: number;
  /** Allowed clock skew against the lists' iat/valid_until (seconds, default: the grant package's). */
  readonly clockToleranceSec?: number;
  /** New entries of each verified list, in sequence order (never an entry twice). */
  readonly onEntries?: (entries: readonly RevocationListEntry[], list: RevocationList, url: string) => void;
  /** Every verified list applied (also those without new entries: they renew valid_until). */
  readonly onList?: (list: RevocationList, url: string) => void;
  /** The follower turned stale (`since`: ms since the epoch when it did). */
  readonly onStale?: (since: number) => void;
  /** The follower is fresh again after being stale. */
  readonly onFresh?: () => void;
  /** A replica failed or sent something invalid; the follower moves on by itself. */
  readonly onError?: (err: FeedError) => void;
  /** Injected fetch (tests). */
  readonly fetch?: typeof fetch;
}

const MAX_BODY = 16 * 1024 * 1024;
const MAX_EVENT = 4 * 1024 * 1024;

/** Follows the revocation feed of one of several replicas. See the module documentation. */
export class FeedFollower {
  /** The revocations held; plug `revocations.isRevoked` into verifyGrant. */
  readonly revocations = new RevocationSet();
  readonly #o: FeedFollowerOptions;
  readonly #fetch: typeof fetch;
  #keySet: KeySet | null = null;
  #jwksFetchedAt = 0;
  #urlIndex = 0;
  #current: string | null = null;
  #lastVerifiedAt = 0;
  #staleSince: number | null = null;
  #started = false;
  #closed = false;
  #abort: AbortController | null = null;
  #staleTimer: NodeJS.Timeout | null = null;
  #loop: Promise<void> | null = null;
  /** Lists are applied one at a time (stream events and pulls interleave). */
  #applying: Promise<unknown> = Promise.resolve();
  #wake: (() => void) | null = null;
  #seq: number;

  constructor(options: FeedFollowerOptions) {
    if (options.urls.length === 0) throw new TypeError('FeedFollower: at least one replica URL is required');
    for (const u of options.urls) new URL(u); // throws on a malformed URL
    this.#o = options;
    this.#fetch = options.fetch ?? fetch;
    this.#seq = options.afterSeq ?? 0;
    // Before the first verified list the follower is stale: nothing is known about revocations yet.
    this.#staleSince = Date.now();
  }

  /** Sequence number of the newest verified list (or `afterSeq` before the first). */
  get lastSeq(): number {
    return this.#seq;
  }
  /** valid_until (unix seconds) of the newest verified list, 0 before the first. */
  get validUntil(): number {
    return this.revocations.validUntil;
  }
  /** When the last list was verified (ms since the epoch), 0 before the first. */
  get lastVerifiedAt(): number {
    return this.#lastVerifiedAt;
  }
  /** The replica currently followed, if any. */
  get currentUrl(): string | null {
    return this.#current;
  }
  /** Since when (ms since the epoch) the follower is stale, or null while it is fresh. */
  get staleSince(): number | null {
    this.#checkStale();
    return this.#staleSince;
  }

  /** Whether the held revocations may be relied on at `nowMs`. */
  isFresh(nowMs = Date.now()): boolean {
    if (this.#lastVerifiedAt === 0) return false;
    if (nowMs >= this.revocations.validUntil * 1000) return false;
    const bound = this.#o.stalenessBoundMs;
    return bound === undefined || nowMs - this.#lastVerifiedAt < bound;
  }

  /** Starts following (idempotent). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#staleTimer = setInterval(() => this.#checkStale(), 100);
    this.#staleTimer.unref?.();
    this.#loop = this.#run();
  }

  /** Stops following and waits until every request has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#staleTimer) clearInterval(this.#staleTimer);
    this.#abort?.abort();
    this.#wake?.();
    await this.#loop?.catch(() => {});
  }

  /** Waits until the follower holds at least `seq` (rejects after `timeoutMs`). */
  async waitForSeq(seq: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#seq < seq) {
      if (this.#closed) throw new Error('FeedFollower closed');
      if (Date.now() > deadline) throw new Error(`FeedFollower: seq ${seq} not reached within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  #checkStale(): void {
    const now = Date.now();
    const fresh = this.isFresh(now);
    if (!fresh && this.#staleSince === null) {
      // It went stale when the list expired or the bound passed, whichever came first.
      const bound = this.#o.stalenessBoundMs;
      const byValidity = this.revocations.validUntil * 1000;
      const byBound = bound === undefined ? Number.POSITIVE_INFINITY : this.#lastVerifiedAt + bound;
      this.#staleSince = Math.min(now, byValidity, byBound);
      this.#emit(() => this.#o.onStale?.(this.#staleSince!));
    } else if (fresh && this.#staleSince !== null) {
      this.#staleSince = null;
      this.#emit(() => this.#o.onFresh?.());
    }
  }

  #emit(fn: () => void): void {
    try {
      fn();
    } catch {
      // A throwing callback must not stop the follower.
    }
  }

  #report(code: FeedError['code'], url: string, message: string): void {
    const err = new FeedError(code, url, message);
    this.#emit(() => this.#o.onError?.(err));
  }

  /** The main loop: follow one replica until it fails, then the next; back off after a full round. */
  async #run(): Promise<void> {
    const min = this.#o.retryMinMs ?? 100;
    const max = this.#o.retryMaxMs ?? 2000;
    let delay = min;
    let failuresInRow = 0;
    while (!this.#closed) {
      const url = this.#o.urls[this.#urlIndex % this.#o.urls.length];
      const healthy = await this.#follow(url);
      if (this.#closed) break;
      this.#urlIndex++;
      if (healthy) {
        failuresInRow = 0;
        delay = min;
        continue;
      }
      failuresInRow++;
      if (failuresInRow >= this.#o.urls.length) {
        // Every replica failed in a row: wait before the next round.
        await this.#sleep(delay);
        delay = Math.min(delay * 2, max);
        failuresInRow = 0;
      }
    }
    this.#current = null;
  }

  /**
   * Follows one replica until it fails. Resolves true if it delivered at least one verified list (so the
   * next replica is tried at once), false if it failed before that.
   */
  async #follow(base: string): Promise<boolean> {
    this.#current = base;
    const abort = new AbortController();
    this.#abort = abort;
    let delivered = false;
    const failed = new Promise<string>((resolve) => {
      abort.signal.addEventListener('abort', () => resolve(String(abort.signal.reason ?? 'aborted')), {
        once: true,
      });
    });
    const stop = (reason: string) => {
      if (!abort.signal.aborted) abort.abort(reason);
    };
    const apply = (jws: string, via: string) =>
      this.#enqueue(async () => {
        const result = await this.#verifyAndApply(base, jws, abort.signal);
        if (result === 'applied' || result === 'old') delivered = true;
        else if (result === 'gap') await this.#pull(base, abort.signal).then((r) => r || stop(`gap after ${via}`));
        else stop(`invalid list via ${via}`);
      });
    const pullOnce = async () => {
      const ok = await this.#enqueue(() => this.#pull(base, abort.signal));
      if (ok) delivered = true;
      else stop('pull failed');
    };

    // Push first (so nothing published after the pull is lost), then pull from lastSeq.
    const stream = this.#stream(base, abort.signal, (data) => void apply(data, 'stream'), stop);
    const refresh = (async () => {
      await pullOnce();
      const every = this.#o.refreshMs ?? 2000;
      while (!abort.signal.aborted && !this.#closed) {
        await this.#sleep(every, abort.signal);
        if (abort.signal.aborted || this.#closed) break;
        await pullOnce();
      }
    })();
    await failed;
    await Promise.allSettled([stream, refresh, this.#applying]);
    if (this.#abort === abort) this.#abort = null;
    return delivered;
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#applying.then(fn, fn);
    this.#applying = next.catch(() => {});
    return next;
  }

  /** Pulls `?after=lastSeq` and applies it. Resolves false when the replica failed. */
  async #pull(base: string, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    const url = `${base}/v1/revocations?after=${this.#seq}`;
    let text: string;
    try {
      const res = await this.#fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#o.requestTimeoutMs ?? 5000)]),
        headers: { accept: 'application/jwt, application/json' },
      });
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        this.#report('EXO_ERR_FEED_UNAVAILABLE', base, `pull answered HTTP ${res.status}`);
        return false;
      }
      text = await readLimited(res, MAX_BODY);
    } catch (err) {
      if (!signal.aborted) this.#report('EXO_ERR_FEED_UNAVAILABLE', base, `pull failed: ${errorMessage(err)}`);
      return false;
    }
    const jws = extractList(text);
    if (jws === undefined) {
      this.#report('EXO_ERR_FEED_INVALID', base, 'pull answer holds no signed list');
      return false;
    }
    const result = await this.#verifyAndApply(base, jws, signal);
    // A pulled list must start at or below what we hold; a gap here means the replica is broken.
    return result === 'applied' || result === 'old';
  }

  /** Reads the event stream, calling `onData` for every `data` payload; ends by calling `stop`. */
  async #stream(
    base: string,
    signal: AbortSignal,
    onData: (data: string) => void,
    stop: (reason: string) => void,
  ): Promise<void> {
    const url = `${base}/v1/revocations/stream?after=${this.#seq}`;
    const idleMs = this.#o.streamIdleMs ?? 30_000;
    let idle: NodeJS.Timeout | null = null;
    const kick = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => stop('stream idle'), idleMs);
    };
    try {
      const connectTimeout = AbortSignal.timeout(this.#o.requestTimeoutMs ?? 5000);
      const connect = new AbortController();
      const onTimeout = () => connect.abort('connect timeout');
      connectTimeout.addEventListener('abort', onTimeout, { once: true });
      const res = await this.#fetch(url, {
        signal: AbortSignal.any([signal, connect.signal]),
        headers: { accept: 'text/event-stream', 'last-event-id': String(this.#seq) },
      });
      connectTimeout.removeEventListener('abort', onTimeout);
      if (!res.ok || !res.body) {
        await res.body?.cancel().catch(() => {});
        this.#report('EXO_ERR_FEED_UNAVAILABLE', base, `stream answered HTTP ${res.status}`);
        stop('stream refused');
        return;
      }
      kick();
      const parser = new SseParser(onData);
      const decoder = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        kick();
        if (!parser.push(decoder.decode(chunk, { stream: true }))) {
          this.#report('EXO_ERR_FEED_INVALID', base, 'stream event exceeds the size limit');
          break;
        }
      }
      if (!signal.aborted) this.#report('EXO_ERR_FEED_UNAVAILABLE', base, 'stream ended');
    } catch (err) {
      if (!signal.aborted) this.#report('EXO_ERR_FEED_UNAVAILABLE', base, `stream failed: ${errorMessage(err)}`);
    } finally {
      if (idle) clearTimeout(idle);
      stop('stream closed');
    }
  }

  /**
   * Verifies one list and applies it if it continues what is held. `old`: nothing newer than held (fine);
   * `gap`: it starts above lastSeq (pull instead); `invalid`: it does not verify.
   */
  async #verifyAndApply(
    base: string,
    jws: string,
    signal: AbortSignal,
  ): Promise<'applied' | 'old' | 'gap' | 'invalid'> {
    let keySet = await this.#keys(base, false, signal);
    if (!keySet) return 'invalid';
    const verify = (keys: KeySet) =>
      verifyRevocationList(jws, {
        jwks: keys,
        issuer: this.#o.issuer,
        clockToleranceSec: this.#o.clockToleranceSec,
      });
    let verified = verify(keySet);
    if (!verified.ok && verified.code === 'EXO_ERR_REVOCATION_SIGNATURE') {
      // Perhaps a key rotation: reload the JWKS once and try again.
      keySet = await this.#keys(base, true, signal);
      if (keySet) verified = verify(keySet);
    }
    if (!verified.ok) {
      this.#report('EXO_ERR_FEED_INVALID', base, `${verified.code}: ${verified.reason}`);
      return 'invalid';
    }
    const list = verified.list;
    if (list.seq < this.#seq) return 'old';
    if (list.after > this.#seq) return 'gap';
    const previous = this.#seq;
    this.revocations.apply(list);
    this.revocations.prune();
    this.#seq = Math.max(this.#seq, list.seq);
    this.#lastVerifiedAt = Math.max(this.#lastVerifiedAt, Date.now());
    const fresh = list.entries.filter((e) => e.seq > previous);
    if (fresh.length > 0) this.#emit(() => this.#o.onEntries?.(fresh, list, base));
    this.#emit(() => this.#o.onList?.(list, base));
    this.#checkStale();
    return fresh.length > 0 || list.seq > previous ? 'applied' : 'old';
  }

  /** The key set: given, loaded, or fetched from the replica (reloaded on demand, rate-limited). */
  async #keys(base: string, reload: boolean, signal: AbortSignal): Promise<KeySet | null> {
    const source = this.#o.jwks;
    if (this.#keySet && !reload) return this.#keySet;
    if (source !== undefined && typeof source !== 'function') {
      if (!this.#keySet) {
        const made = createKeySet(source);
        if (!made.ok) throw new TypeError(`FeedFollower: ${made.reason}`);
        this.#keySet = made.keySet;
      }
      return this.#keySet;
    }
    const now = Date.now();
    if (this.#keySet && now - this.#jwksFetchedAt < 1000) return this.#keySet;
    this.#jwksFetchedAt = now;
    try {
      let doc: unknown;
      if (typeof source === 'function') doc = await (source as (url: string) => Promise<unknown>)(base);
      else {
        const res = await this.#fetch(`${base}/.well-known/jwks.json`, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.#o.requestTimeoutMs ?? 5000)]),
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        doc = JSON.parse(await readLimited(res, 1024 * 1024));
      }
      const made = createKeySet(doc);
      if (!made.ok) {
        this.#report('EXO_ERR_FEED_INVALID', base, `JWKS refused: ${made.reason}`);
        return this.#keySet;
      }
      this.#keySet = made.keySet;
    } catch (err) {
      if (!signal.aborted) this.#report('EXO_ERR_FEED_UNAVAILABLE', base, `JWKS fetch failed: ${errorMessage(err)}`);
    }
    return this.#keySet;
  }

  #sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }
}

/**
 * Minimal server-sent-events parser (WHATWG): `data:` lines of one event are joined with newlines; the
 * event is dispatched at the blank line; comments and other fields are ignored. Refuses oversized events.
 */
class SseParser {
  #buffer = '';
  #data: string[] = [];
  #size = 0;
  constructor(private readonly onData: (data: string) => void) {}

  /** Feeds text; false when an event exceeds the size limit. */
  push(text: string): boolean {
    this.#buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (!m) break;
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      if (line === '') {
        if (this.#data.length > 0) this.onData(this.#data.join('\n'));
        this.#data = [];
        this.#size = 0;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') {
        this.#size += value.length;
        if (this.#size > MAX_EVENT) return false;
        this.#data.push(value);
      }
    }
    return this.#buffer.length <= MAX_EVENT;
  }
}

/**
 * The compact JWS of a pull answer or event payload: the body itself (`application/jwt`), or a JSON object
 * carrying it as `list`, `jws` or `token`.
 */
export function extractList(text: string): string | undefined {
  const t = text.trim();
  if (t.startsWith('{')) {
    try {
      const v = JSON.parse(t) as Record<string, unknown>;
      for (const name of ['list', 'jws', 'token', 'revocations']) if (typeof v[name] === 'string') return v[name];
    } catch {
      return undefined;
    }
    return undefined;
  }
  if (t.startsWith('"')) {
    try {
      const v = JSON.parse(t);
      return typeof v === 'string' ? v : undefined;
    } catch {
      return undefined;
    }
  }
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(t) ? t : undefined;
}

async function readLimited(res: Response, limit: number): Promise<string> {
  const length = Number(res.headers.get('content-length') ?? '0');
  if (length > limit) throw new Error(`answer larger than ${limit} bytes`);
  if (!res.body) return '';
  const decoder = new TextDecoder();
  let out = '';
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw new Error(`answer larger than ${limit} bytes`);
    out += decoder.decode(chunk, { stream: true });
  }
  return out + decoder.decode();
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
