/**
 * A light HTTP/1.1 load generator for the grant benchmark: each client is one keep-alive TCP connection that
 * writes a pre-built request and waits for the whole response before writing the next (no pipelining), so
 * `clients` requests are in flight at once. node:http's client costs about as much CPU per request as the
 * server's handling on this 2-core machine; writing the same bytes on a raw socket and reading back only the
 * status line, Content-Length and body leaves that core to the server. Still real HTTP over TCP, and every
 * response is checked by the caller.
 */
import { connect, type Socket } from 'node:net';

/** One completed exchange: HTTP status and body. */
export interface LoadResponse {
  readonly status: number;
  readonly body: Buffer;
}

/** What one client sends and how its responses are checked. */
export interface LoadClient {
  /** The complete request (request line, headers, body), sent as is for every request of this client. */
  readonly request: Buffer;
  /** Called for every response; throw to fail the run (e.g. status not 201, body not a grant). */
  readonly check: (response: LoadResponse) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

/** A keep-alive connection that runs one request at a time. */
class Connection {
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (r: LoadResponse) => void; reject: (e: Error) => void } | undefined;
  #failed: Error | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    const fail = (err: Error) => {
      this.#failed ??= err;
      this.#waiting?.reject(err);
      this.#waiting = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  static open(host: string, port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  send(request: Buffer): Promise<LoadResponse> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(request);
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const end = this.#buffer.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.#buffer.toString('latin1', 0, end);
    // "HTTP/1.1 201 Created"
    const status = Number(head.slice(9, 12));
    const length = CONTENT_LENGTH.exec(head);
    if (!length) {
      this.#socket.destroy(new Error(`response without Content-Length: ${head.split('\r\n')[0]}`));
      return;
    }
    const bodyStart = end + HEADER_END.length;
    const bodyEnd = bodyStart + Number(length[1]);
    if (this.#buffer.length < bodyEnd) return;
    const body = this.#buffer.subarray(bodyStart, bodyEnd);
    this.#buffer = this.#buffer.length > bodyEnd ? this.#buffer.subarray(bodyEnd) : Buffer.alloc(0);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve({ status, body });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Result of a load run. */
export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  /** Per-request latency (write of the request to the end of the response), ms, unsorted. */
  readonly latencies: Float64Array;
}

/**
 * Sends `total` requests spread over the clients (each client one connection, one request in flight) and
 * returns the wall time and every latency. Rejects on the first failed check or connection error.
 */
export async function runLoad(
  target: { readonly host: string; readonly port: number },
  clients: readonly LoadClient[],
  total: number,
): Promise<LoadResult> {
  const connections = await Promise.all(clients.map(() => Connection.open(target.host, target.port)));
  const latencies = new Float64Array(total);
  let next = 0;
  try {
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (client, i) => {
        const conn = connections[i]!;
        while (next < total) {
          const slot = next++;
          const start = performance.now();
          const response = await conn.send(client.request);
          latencies[slot] = performance.now() - start;
          client.check(response);
        }
      }),
    );
    return { requests: total, seconds: (performance.now() - t0) / 1000, latencies };
  } finally {
    for (const c of connections) c.close();
  }
}

/** A complete HTTP/1.1 POST with a JSON body, as bytes. */
export function buildPost(host: string, path: string, headers: Readonly<Record<string, string>>, body: string): Buffer {
  const payload = Buffer.from(body, 'utf8');
  let head = `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), payload]);
}
