import { publicJwk } from '@exonet/grant';
import type { DriverConnection } from './driver-connection.ts';

/** What a task asks the permission server for (POST /v1/grants). */
export interface GrantWish {
  readonly dir: 'rx' | 'tx';
  /** pcap-filter expression of what the task wants (the server ANDs it with the rule's filter). */
  readonly filter: string;
  /** The `{port}` of the rule, when it has one. */
  readonly port?: number;
  readonly layer?: 'task' | 'user' | 'system';
  /** Requested lifetime, seconds (the rule and the staleness bound cap it). */
  readonly ttl?: number;
  readonly exclusive?: boolean;
  /** A specific rule, when several could apply. */
  readonly rule?: string;
}

/** A grant the client keeps installed and renewed. */
export interface HeldGrant {
  readonly wish: GrantWish;
  /** Current grant id (changes at each renewal). */
  id: string;
  /** Expiry of the current grant, unix seconds. */
  expiresAt: number;
  /** The program the driver runs, base64url (what the server built). */
  program: string;
  renewals: number;
}

/** The permission server refused: its HTTP status, error code and message. */
export class GrantRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'GrantRequestError';
  }
}

/** Options of {@link GrantClient}. */
export interface GrantClientOptions {
  /** Permission server base URL. */
  readonly server: string;
  /** The task's user's bearer token. */
  readonly token: string;
  /** The driver id grants are for (their `aud`). */
  readonly driver: string;
  /** The connection the grants are installed on; its key is the holder key. */
  readonly connection: DriverConnection;
  /** Renew when this fraction of a grant's lifetime has passed (default 0.6). */
  readonly renewAt?: number;
  /** Told when a renewal fails (the grant then lapses at its expiry). */
  readonly onRenewError?: (grant: HeldGrant, err: Error) => void;
}

/**
 * Obtains grants from the permission server for a task, installs them on its driver, and renews them before
 * they expire (the renewed grant replaces the old one on the driver with no gap in delivery).
 */
export class GrantClient {
  readonly #o: GrantClientOptions;
  readonly #held = new Set<HeldGrant>();
  readonly #timers = new Map<HeldGrant, NodeJS.Timeout>();
  #closed = false;

  constructor(options: GrantClientOptions) {
    this.#o = options;
  }

  /** Grants held now. */
  get grants(): readonly HeldGrant[] {
    return [...this.#held];
  }

  /**
   * Requests a grant and installs it.
   * @throws GrantRequestError when the server refuses (403 with the policy's reason, 409 exclusive conflict...);
   *   DriverRefusal when the driver refuses the grant
   */
  async acquire(wish: GrantWish): Promise<HeldGrant> {
    const issued = await this.#call('POST', '/v1/grants', {
      driver: this.#o.driver,
      holder: publicJwk(this.#o.connection.key.publicKey),
      ...wish,
    });
    await this.#o.connection.install(issued.grant);
    const held: HeldGrant = {
      wish,
      id: issued.id,
      expiresAt: issued.expiresAt,
      program: issued.program,
      renewals: 0,
    };
    this.#held.add(held);
    this.#schedule(held, issued.iat ?? Math.floor(Date.now() / 1000));
    return held;
  }

  /** Renews a grant now: a fresh grant from the server, installed in place of the old one. */
  async renew(held: HeldGrant): Promise<void> {
    const issued = await this.#call('POST', `/v1/grants/${encodeURIComponent(held.id)}/renew`, {});
    await this.#o.connection.install(issued.grant, held.id);
    held.id = issued.id;
    held.expiresAt = issued.expiresAt;
    held.program = issued.program;
    held.renewals++;
    this.#schedule(held, Math.floor(Date.now() / 1000));
  }

  /** Stops renewing and removes the grant from the driver. */
  async release(held: HeldGrant): Promise<void> {
    clearTimeout(this.#timers.get(held));
    this.#timers.delete(held);
    this.#held.delete(held);
    await this.#o.connection.uninstall(held.id).catch(() => false);
  }

  /** Stops every renewal (the grants stay installed until they expire or the task detaches). */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }

  /** Arms the renewal of `held`: after `renewAt` of its lifetime, or after `delayMs` when given (a retry). */
  #schedule(held: HeldGrant, issuedAt: number, delayMs?: number): void {
    clearTimeout(this.#timers.get(held));
    if (this.#closed) return;
    const lifetime = Math.max(1, held.expiresAt - issuedAt);
    const wait = delayMs ?? Math.max(500, lifetime * (this.#o.renewAt ?? 0.6) * 1000);
    const t = setTimeout(() => {
      this.renew(held).catch((err: Error) => {
        this.#o.onRenewError?.(held, err);
        // Try again while the grant still lives: a third of what is left, at least a second apart.
        const left = held.expiresAt * 1000 - Date.now();
        if (left > 1000) this.#schedule(held, issuedAt, Math.max(1000, left / 3));
      });
    }, wait);
    t.unref();
    this.#timers.set(held, t);
  }

  async #call(
    method: string,
    path: string,
    body: unknown,
  ): Promise<{ id: string; grant: string; expiresAt: number; program: string; iat?: number }> {
    const res = await fetch(`${this.#o.server.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.#o.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json?.error ?? {}) as { code?: string; message?: string };
      throw new GrantRequestError(res.status, e.code ?? 'EXO_ERR_HTTP', e.message ?? text.slice(0, 200));
    }
    return json as { id: string; grant: string; expiresAt: number; program: string };
  }
}
