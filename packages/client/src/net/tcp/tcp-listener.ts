/**
 * A listening port: accepted connections come out of an async iterator or `accept()`.
 */
import { AsyncQueue } from '../async-queue.ts';
import { NetError } from '../errors.ts';
import type { TcpConfig } from './tcp-connection.ts';
import type { TcpSocket } from './tcp-socket.ts';

/** Options of {@link NetStack.tcpListen}. */
export interface TcpListenOptions extends TcpConfig {
  /** Connections in SYN-RECEIVED or waiting for accept before new SYNs are ignored (default 128). */
  readonly backlog?: number;
}

/** A passive open on one port. */
export class TcpListener implements AsyncIterable<TcpSocket> {
  readonly #queue: AsyncQueue<TcpSocket>;
  /** Connections in the handshake, counted against the backlog. */
  embryonic = 0;
  readonly backlog: number;

  /** @internal Created by the TCP layer. */
  constructor(
    readonly port: number,
    readonly options: TcpListenOptions,
    readonly onClose: () => void,
  ) {
    this.backlog = options.backlog ?? 128;
    this.#queue = new AsyncQueue(this.backlog);
  }

  /** True when a new SYN may be answered. */
  get hasRoom(): boolean {
    return this.embryonic + this.#queue.size < this.backlog && !this.#queue.closed;
  }

  /** @internal An established connection ready to accept. */
  push(sock: TcpSocket): boolean {
    return this.#queue.push(sock);
  }

  /** The next established connection; rejects with EXO_ERR_NET_CLOSED once the listener is closed. */
  async accept(): Promise<TcpSocket> {
    const s = await this.#queue.next();
    if (!s) throw new NetError('EXO_ERR_NET_CLOSED', `TCP listener on port ${this.port} is closed`);
    return s;
  }

  /** Stops listening. Accepted connections stay open; established ones nobody accepted yet are reset. */
  close(): void {
    if (this.#queue.closed) return;
    this.#queue.close();
    for (const s of this.#queue.drain()) s.abort();
    this.onClose();
  }

  [Symbol.asyncIterator](): AsyncIterator<TcpSocket> {
    return this.#queue[Symbol.asyncIterator]();
  }
}
