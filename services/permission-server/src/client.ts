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
    this.#token = options.token ?? process.env.EXONET_TOKEN;
  }

  /** Calls the API; resolves with the JSON body (or text), rejects with ApiError on a non-2xx status. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await fetch(`${this.server}${path}`, {
      method,
      headers: {
        ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
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
