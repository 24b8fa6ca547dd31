/** A small HTTP client of the permission server API, used by the admin commands of the command line. */

export interface ClientOptions {
  /** Base URL (default: EXONET_SERVER or http://127.0.0.1:7480). */
  readonly server?: string;
  /** Bearer token (default: EXONET_TOKEN). */
  readonly token?: string;
}

/** An API error with the server's code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${code} (HTTP ${status}): ${message}`);
    this.name = 'ApiError';
  }
}

export class PermissionClient {
  readonly server: string;
  readonly #token: string | undefined;

  constructor(options: ClientOptions = {}) {
    this.server = (options.server ?? process.env.EXONET_SERVER ?? 'http://127.0.0.1:7480').replace(/\/+$/, '');
    if (!URL.canParse(this.server) || !/^https?:$/.test(new URL(this.server).protocol)) {
      throw new Error(
        `permission server: "${this.server}" is not an http:// or https:// URL (--server or $EXONET_SERVER)`,
      );
    }
    this.#token = options.token ?? process.env.EXONET_TOKEN;
  }

  /** Calls the API; resolves with the JSON body (or text), rejects with ApiError on a non-2xx status. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.server}${path}`, {
        method,
        headers: {
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      // fetch's own message is "fetch failed"; the reason (refused, unknown host, timeout) is in its cause.
      const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
      const why =
        e.name === 'TimeoutError' ? 'no answer within 30 s' : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new Error(`cannot reach the permission server at ${this.server}: ${why}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? 'EXO_ERR_HTTP', err?.message ?? text.slice(0, 200));
    }
    return (json ?? text) as T;
  }
}
