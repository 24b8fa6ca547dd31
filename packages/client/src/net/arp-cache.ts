/**
 * The ARP resolver (RFC 826, with the retry and timeout behaviour of RFC 1122 section 2.3.2.1): a cache of
 * IPv4 -> MAC entries, requests retried a few times, and a small queue of frames per unresolved address so the
 * first packets to a new neighbour are not lost. The same machinery serves IPv6 neighbour discovery (RFC 4861
 * section 7.2) with string keys (the address in hex) and solicitations as requests.
 */
import { formatIpv4, type Ipv4Address, type MacAddress } from '@exonet/wire';
import type { Clock, TimerHandle } from './clock.ts';
import { NetError } from './errors.ts';

/** Tuning of the resolver. */
export interface ArpOptions {
  /** How many requests are sent before giving up (default 3). */
  readonly retries?: number;
  /** Delay between requests in milliseconds (default 1000, as Linux's retrans_time). */
  readonly retryMs?: number;
  /** How long an entry stays valid in milliseconds (default 60 s). */
  readonly ttlMs?: number;
  /** Frames queued per unresolved address (RFC 1122 asks for at least one; default 16). */
  readonly queueLength?: number;
  /** Most entries kept (oldest evicted; default 512). */
  readonly maxEntries?: number;
}

/** How a cache names its addresses in errors, and what it calls its requests. */
export interface NeighborNaming<A> {
  readonly describe: (a: A) => string;
  readonly protocol: string;
}

const IPV4_NAMING: NeighborNaming<number> = { describe: (a) => formatIpv4(a), protocol: 'ARP' };

interface Entry {
  mac: MacAddress;
  expires: number;
}

interface Pending {
  tries: number;
  timer: TimerHandle | null;
  frames: Uint8Array[];
  waiters: { resolve: (m: MacAddress) => void; reject: (e: Error) => void }[];
}

/** Neighbour cache with resolution; keyed by IPv4 address by default. */
export class ArpCache<A extends number | string = Ipv4Address> {
  readonly #entries = new Map<A, Entry>();
  readonly #pending = new Map<A, Pending>();
  readonly #retries: number;
  readonly #retryMs: number;
  readonly #ttlMs: number;
  readonly #queueLength: number;
  readonly #maxEntries: number;

  constructor(
    readonly clock: Clock,
    /** Sends an ARP request for the address. */
    readonly sendRequest: (ip: A) => void,
    /** Sends a queued frame once its destination MAC is known (the callee fills the Ethernet destination). */
    readonly sendResolved: (frame: Uint8Array, mac: MacAddress) => void,
    opts: ArpOptions = {},
    readonly naming: NeighborNaming<A> = IPV4_NAMING as unknown as NeighborNaming<A>,
  ) {
    this.#retries = opts.retries ?? 3;
    this.#retryMs = opts.retryMs ?? 1000;
    this.#ttlMs = opts.ttlMs ?? 60_000;
    this.#queueLength = opts.queueLength ?? 16;
    this.#maxEntries = opts.maxEntries ?? 512;
  }

  /** The cached MAC for `ip`, when fresh. */
  lookup(ip: A): MacAddress | undefined {
    const e = this.#entries.get(ip);
    if (!e) return undefined;
    if (e.expires <= this.clock.now()) {
      this.#entries.delete(ip);
      return undefined;
    }
    return e.mac;
  }

  /** True when an entry (fresh or not) exists: RFC 826's merge rule updates only known senders. */
  has(ip: A): boolean {
    return this.#entries.has(ip);
  }

  /** Records `ip` at `mac` and flushes frames and waiters pending on it. */
  learn(ip: A, mac: MacAddress): void {
    if (!this.#entries.has(ip) && this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.delete(ip); // re-insert so Map order is least recently learned first
    this.#entries.set(ip, { mac: mac.slice(), expires: this.clock.now() + this.#ttlMs });
    const p = this.#pending.get(ip);
    if (!p) return;
    this.#pending.delete(ip);
    if (p.timer) this.clock.clearTimer(p.timer);
    for (const f of p.frames) this.sendResolved(f, mac);
    for (const w of p.waiters) w.resolve(mac.slice());
  }

  /** Queues `frame` until `ip` resolves (starting resolution if needed); returns false when the queue is full. */
  enqueue(ip: A, frame: Uint8Array): boolean {
    const p = this.#start(ip);
    if (p.frames.length >= this.#queueLength) p.frames.shift(); // keep the newest, as Linux's unres_qlen does
    p.frames.push(frame);
    return true;
  }

  /** Resolves `ip` to a MAC, from the cache or by asking; rejects with EXO_ERR_NET_ARP_TIMEOUT. */
  resolve(ip: A): Promise<MacAddress> {
    const mac = this.lookup(ip);
    if (mac) return Promise.resolve(mac);
    return new Promise((resolve, reject) => this.#start(ip).waiters.push({ resolve, reject }));
  }

  /** Forgets everything and fails all waiters (used when the stack closes). */
  clear(reason: Error): void {
    for (const p of this.#pending.values()) {
      if (p.timer) this.clock.clearTimer(p.timer);
      for (const w of p.waiters) w.reject(reason);
    }
    this.#pending.clear();
    this.#entries.clear();
  }

  #start(ip: A): Pending {
    let p = this.#pending.get(ip);
    if (p) return p;
    p = { tries: 0, timer: null, frames: [], waiters: [] };
    this.#pending.set(ip, p);
    this.#ask(ip, p);
    return p;
  }

  #ask(ip: A, p: Pending): void {
    if (p.tries >= this.#retries) {
      this.#pending.delete(ip);
      const err = new NetError(
        'EXO_ERR_NET_ARP_TIMEOUT',
        `no ${this.naming.protocol} reply from ${this.naming.describe(ip)} after ${this.#retries} requests`,
      );
      for (const w of p.waiters) w.reject(err);
      return;
    }
    p.tries++;
    this.sendRequest(ip);
    p.timer = this.clock.setTimer(this.#retryMs, () => {
      p.timer = null;
      if (this.#pending.get(ip) === p) this.#ask(ip, p);
    });
  }
}
