/**
 * UDP endpoints: `stack.bindUdp(port)` returns one; it delivers datagrams with their source and sends
 * datagrams from the bound port.
 */
import {
  emitUdp,
  formatIpv4,
  IpProtocol,
  type Ipv4Address,
  type Ipv4Repr,
  parseIpv4Address,
  parseUdp,
} from '@exonet/wire';
import { AsyncQueue } from './async-queue.ts';
import { NetError } from './errors.ts';
import type { Ipv4Sender } from './ip-sender.ts';

/** A received datagram. */
export interface UdpDatagram {
  /** Sender's address (IPv4 as a number) and its dotted form. */
  readonly srcAddress: Ipv4Address;
  readonly srcText: string;
  readonly srcPort: number;
  /** The address it was sent to (ours, or a broadcast). */
  readonly dstAddress: Ipv4Address;
  readonly dstPort: number;
  /** The payload (a copy the receiver owns). */
  readonly data: Uint8Array;
}

/** Options of {@link NetStack.bindUdp}. */
export interface BindUdpOptions {
  /** Datagrams buffered for the async iterator before new ones are dropped (default 1024). */
  readonly queueLength?: number;
  /** Called for each datagram, in addition to (or instead of reading) the iterator. */
  readonly onDatagram?: (d: UdpDatagram) => void;
}

/** A bound UDP port. Iterate it (`for await (const d of ep)`) or pass `onDatagram`. */
export class UdpEndpoint implements AsyncIterable<UdpDatagram> {
  readonly #queue: AsyncQueue<UdpDatagram>;
  readonly #onDatagram: ((d: UdpDatagram) => void) | undefined;
  #closed = false;
  /** Datagrams dropped because the queue was full. */
  dropped = 0;

  /** @internal Created by the stack. */
  constructor(
    readonly ip: Ipv4Sender,
    readonly port: number,
    opts: BindUdpOptions,
    readonly onClose: () => void,
  ) {
    this.#queue = new AsyncQueue(opts.queueLength ?? 1024);
    this.#onDatagram = opts.onDatagram;
  }

  /** @internal Called by the stack for a datagram addressed to this port. */
  input(ip: Ipv4Repr, verify: boolean): void {
    const r = parseUdp(ip.payload, ip.src, ip.dst, { verifyChecksum: verify });
    if (!r.ok) return;
    const d: UdpDatagram = {
      srcAddress: ip.src,
      srcText: formatIpv4(ip.src),
      srcPort: r.value.srcPort,
      dstAddress: ip.dst,
      dstPort: r.value.dstPort,
      data: r.value.payload.slice(),
    };
    if (this.#onDatagram) {
      this.#onDatagram(d);
      return;
    }
    if (!this.#queue.push(d)) this.dropped++;
  }

  /**
   * Sends `data` to `address:port` from this endpoint's port. Returns false when the frame could not be sent
   * or queued behind ARP resolution. Larger than the MTU datagrams are fragmented.
   */
  send(data: Uint8Array, address: string | Ipv4Address, port: number): boolean {
    if (this.#closed) throw new NetError('EXO_ERR_NET_CLOSED', `UDP port ${this.port} is closed`);
    const dst = typeof address === 'number' ? address : parseIpv4Address(address);
    if (dst === null) throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IPv4 address, got "${address}"`);
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected a UDP port 1..65535, got ${port}`);
    }
    if (data.length > 65507) {
      throw new NetError('EXO_ERR_NET_MESSAGE_TOO_LONG', `expected at most 65507 bytes, got ${data.length}`);
    }
    const repr = { srcPort: this.port, dstPort: port, payload: data };
    return this.ip.sendIpv4(dst, IpProtocol.UDP, 8 + data.length, (b, off) =>
      emitUdp(repr, b, off, this.ip.address, dst),
    );
  }

  /** Replies to the sender of a datagram. */
  reply(to: UdpDatagram, data: Uint8Array): boolean {
    return this.send(data, to.srcAddress, to.srcPort);
  }

  /** The next datagram, or undefined once closed. */
  receive(): Promise<UdpDatagram | undefined> {
    return this.#queue.next();
  }

  /** Unbinds the port and ends iteration. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.close();
    this.onClose();
  }

  [Symbol.asyncIterator](): AsyncIterator<UdpDatagram> {
    return this.#queue[Symbol.asyncIterator]();
  }
}
