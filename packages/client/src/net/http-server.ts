/**
 * A tiny HTTP/1.1 server (RFC 9112) over the stack's TCP: request line, headers, a Content-Length body,
 * persistent connections; enough for the example task and for curl. No chunked request bodies, no TLS.
 */
import type { TimerHandle } from './clock.ts';
import type { NetStack } from './stack.ts';
import type { TcpListener } from './tcp/tcp-listener.ts';
import type { TcpSocket } from './tcp/tcp-socket.ts';

/** A parsed request. Header names are lower case. */
export interface HttpRequest {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Uint8Array;
  /** The peer, as "a.b.c.d:port". */
  readonly remote: string;
}

/** What a handler returns; `body` strings are sent as UTF-8. Content-Length is always set by the server. */
export interface HttpResponse {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | string;
}

/** Options of {@link serveHttp}. */
export interface HttpServerOptions {
  /** TCP port (default 80). */
  readonly port?: number;
  readonly handler: (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;
  /** Largest accepted header block in bytes (default 16 KiB; beyond it: 431). */
  readonly maxHeaderBytes?: number;
  /** Largest accepted body in bytes (default 16 MiB; beyond it: 413). */
  readonly maxBodyBytes?: number;
  /** Value of the Server header (default "exonet"). */
  readonly serverName?: string;
  /** A connection with no incoming data for this long is reset (default 60 s; 0 turns it off). */
  readonly idleTimeoutMs?: number;
}

/** A running server. */
export interface HttpServer {
  readonly listener: TcpListener;
  /** Requests answered so far. */
  readonly requests: number;
  /** Stops accepting; open connections finish their current exchange. */
  close(): void;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  411: 'Length Required',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

const enc = new TextEncoder();
const dec = new TextDecoder();

function findHeaderEnd(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** Serves HTTP on `stack` until closed. Each connection is handled by its own async loop. */
export function serveHttp(stack: NetStack, opts: HttpServerOptions): HttpServer {
  const listener = stack.tcpListen(opts.port ?? 80);
  const state = { requests: 0 };
  const server: HttpServer = {
    listener,
    get requests() {
      return state.requests;
    },
    close: () => listener.close(),
  };
  (async () => {
    for await (const sock of listener) {
      handleConnection(stack, sock, opts, state).catch(() => sock.abort());
    }
  })();
  return server;
}

async function handleConnection(
  stack: NetStack,
  sock: TcpSocket,
  opts: HttpServerOptions,
  state: { requests: number },
): Promise<void> {
  const maxHeader = opts.maxHeaderBytes ?? 16 * 1024;
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let idle: TimerHandle | null = null;
  const touch = (): void => {
    if (idle) stack.clock.clearTimer(idle);
    idle = idleMs > 0 ? stack.clock.setTimer(idleMs, () => sock.abort()) : null;
  };
  // Received bytes not yet consumed, kept as a list so a large body is joined once, not per segment.
  let parts: Uint8Array[] = [];
  let buffered = 0;
  let buf: Uint8Array = new Uint8Array(0);
  const join = (): void => {
    if (parts.length === 0) return;
    const out = new Uint8Array(buf.length + buffered);
    out.set(buf);
    let o = buf.length;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    buf = out;
    parts = [];
    buffered = 0;
  };
  let eof = false;
  const more = async (): Promise<boolean> => {
    const c = await sock.read();
    if (c === null) {
      eof = true;
      return false;
    }
    touch();
    parts.push(c);
    buffered += c.length;
    return true;
  };
  touch();
  try {
    await serveRequests();
  } finally {
    if (idle) stack.clock.clearTimer(idle);
  }

  async function serveRequests(): Promise<void> {
    const respond = async (res: HttpResponse, keepAlive: boolean, head: boolean): Promise<void> => {
      const status = res.status ?? 200;
      const body = typeof res.body === 'string' ? enc.encode(res.body) : (res.body ?? new Uint8Array(0));
      const headers: Record<string, string> = {
        server: opts.serverName ?? 'exonet',
        'content-type': 'text/plain; charset=utf-8',
        ...Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
        'content-length': String(body.length),
        connection: keepAlive ? 'keep-alive' : 'close',
      };
      let text = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}\r\n`;
      for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
      await sock.write(`${text}\r\n`);
      if (!head && body.length > 0) await sock.write(body);
      touch(); // a slow reader of a large answer is not idle
      state.requests++;
    };
    for (;;) {
      join();
      let end = findHeaderEnd(buf);
      while (end < 0) {
        if (buf.length > maxHeader) {
          await respond({ status: 431, body: 'header too large\n' }, false, false);
          await sock.close();
          return;
        }
        if (!(await more())) {
          await sock.close();
          return;
        }
        join();
        end = findHeaderEnd(buf);
      }
      const lines = dec.decode(buf.subarray(0, end - 4)).split('\r\n');
      buf = buf.subarray(end);
      const [method, target, version] = (lines[0] ?? '').split(' ');
      if (!method || !target || !version?.startsWith('HTTP/1.')) {
        await respond({ status: 400, body: 'bad request line\n' }, false, false);
        await sock.close();
        return;
      }
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
      }
      const conn = (headers.get('connection') ?? '').toLowerCase();
      const keepAlive = version === 'HTTP/1.1' ? conn !== 'close' : conn === 'keep-alive';
      if (headers.has('transfer-encoding')) {
        await respond({ status: 501, body: 'chunked request bodies are not supported\n' }, false, false);
        await sock.close();
        return;
      }
      const len = Number(headers.get('content-length') ?? '0');
      if (!Number.isInteger(len) || len < 0) {
        await respond({ status: 400, body: 'bad content-length\n' }, false, false);
        await sock.close();
        return;
      }
      if (len > maxBody) {
        await respond({ status: 413, body: 'body too large\n' }, false, false);
        await sock.close();
        return;
      }
      if (headers.get('expect')?.toLowerCase() === '100-continue') await sock.write('HTTP/1.1 100 Continue\r\n\r\n');
      while (buf.length + buffered < len) {
        if (!(await more())) break;
      }
      join();
      if (buf.length < len) {
        await sock.close();
        return;
      }
      const body = buf.slice(0, len);
      buf = buf.subarray(len);
      let res: HttpResponse;
      try {
        res = await opts.handler({
          method,
          target,
          version,
          headers,
          body,
          remote: sock.toString().split(' > ')[1] ?? '',
        });
      } catch {
        res = { status: 500, body: 'internal error\n' };
      }
      await respond(res, keepAlive && !eof, method === 'HEAD');
      if (!keepAlive || eof) {
        await sock.close();
        return;
      }
    }
  }
}
