/**
 * The stream API over a {@link TcpConnection}: `write` with backpressure, async-iterable reads, half-close
 * with `end`, `close` and `abort`.
 */
import type { IpAddress } from '@exonet/wire';
import { NetError } from '../errors.ts';
import { formatEndpoint } from '../ip-text.ts';
import type { TcpConfig, TcpConnection, TcpState } from './tcp-connection.ts';

/** Options of {@link NetStack.tcpConnect}. */
export interface TcpConnectOptions extends TcpConfig {
  /** Local port (default: a random ephemeral port, 49152..65535). */
  readonly localPort?: number;
}

const textEncoder = new TextEncoder();

/** An open TCP connection as a byte stream. */
export class TcpSocket implements AsyncIterable<Uint8Array> {
  readonly #conn: TcpConnection;
  #waiters: (() => void)[] = [];
  /** Resolves when the connection reaches CLOSED: with null after an orderly close, else the error. */
  readonly closed: Promise<NetError | null>;

  /** @internal Created by the TCP layer. */
  constructor(conn: TcpConnection) {
    this.#conn = conn;
    let done!: (e: NetError | null) => void;
    this.closed = new Promise((r) => {
      done = r;
    });
    conn.onChange = () => {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
      if (conn.state === 'CLOSED') done(conn.error);
    };
  }

  get localAddress(): IpAddress {
    return this.#conn.localAddress;
  }
  get localPort(): number {
    return this.#conn.localPort;
  }
  get remoteAddress(): IpAddress {
    return this.#conn.remoteAddress;
  }
  get remotePort(): number {
    return this.#conn.remotePort;
  }
  /** The RFC 9293 state name. */
  get state(): TcpState {
    return this.#conn.state;
  }
  /** Loss recovery so far: retransmission timeouts, fast retransmits, holes resent from SACK information. */
  get counters(): { readonly timeouts: number; readonly fastRetransmits: number; readonly sackRetransmits: number } {
    return { ...this.#conn.counters };
  }
  /** Bytes queued but not yet acknowledged by the peer. */
  get bufferedAmount(): number {
    return this.#conn.sendBuf.length;
  }
  /** "10.0.0.1:80 > 10.0.0.2:5000" or "[fd00::1]:80 > [fd00::2]:5000". */
  toString(): string {
    return `${formatEndpoint(this.localAddress, this.localPort)} > ${formatEndpoint(this.remoteAddress, this.remotePort)}`;
  }

  #wait(): Promise<void> {
    return new Promise((r) => this.#waiters.push(r));
  }

  /**
   * Queues `data` (a string is sent as UTF-8). Resolves once all of it sits in the send buffer, waiting while the
   * buffer is full (backpressure). Rejects with EXO_ERR_NET_CLOSED after `end()`, or with the error that ended
   * the connection.
   */
  async write(data: Uint8Array | string): Promise<void> {
    let bytes = typeof data === 'string' ? textEncoder.encode(data) : data;
    while (bytes.length > 0) {
      const c = this.#conn;
      if (c.error) throw c.error;
      if (!c.writable) throw new NetError('EXO_ERR_NET_CLOSED', `${this}: the sending side is closed`);
      const n = c.queue(bytes);
      bytes = bytes.subarray(n);
      if (bytes.length > 0) await this.#wait();
    }
  }

  /** Resolves once everything written so far has been acknowledged (or rejects if the connection dies). */
  async drain(): Promise<void> {
    while (this.#conn.sendBuf.length > 0) {
      if (this.#conn.error) throw this.#conn.error;
      if (this.#conn.state === 'CLOSED') return;
      await this.#wait();
    }
  }

  /**
   * The next chunk of received data, or null at end of stream (the peer sent FIN). Rejects with the error
   * that reset the connection.
   */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const c = this.#conn;
      const chunk = c.take();
      if (chunk) return chunk;
      if (c.error) throw c.error;
      if (c.finReceived || c.state === 'CLOSED') return null;
      await this.#wait();
    }
  }

  /** Reads until end of stream and returns everything, concatenated. */
  async readAll(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of this) {
      parts.push(c);
      n += c.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Half-close: FIN after the queued data. Reading continues until the peer closes too. */
  end(): void {
    this.#conn.shutdown();
  }

  /** `end()`, then wait until the connection is fully closed (TIME-WAIT counts as closed for the caller). */
  async close(): Promise<void> {
    this.end();
    while (this.#conn.state !== 'CLOSED' && this.#conn.state !== 'TIME-WAIT') {
      // Unread data would keep the window shut: drain it, since the caller is done reading.
      while (this.#conn.take()) {}
      await this.#wait();
    }
  }

  /** Resets the connection (RST) and drops all buffers. */
  abort(): void {
    this.#conn.abort(null);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const c = await this.read();
      if (c === null) return;
      yield c;
    }
  }
}
