/**
 * UDP endpoints: `stack.bindUdp(port)` returns one; it delivers datagrams (IPv4, and IPv6 when the stack has
 * it on) with their source and sends datagrams from the bound port.
 */
import {
  emitUdp,
  formatIpv4,
  formatIpv6,
  type IpAddress,
  IpProtocol,
  parseIpv4Address,
  parseIpv6Address,
  parseUdp,
} from '@exonet/wire';
import { AsyncQueue } from './async-queue.ts';
import { NetError } from './errors.ts';
import type { Ipv4Sender } from './ip-sender.ts';

/** A received datagram. */
export interface UdpDatagram {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Sender's address: a number for IPv4, 16 bytes for IPv6. */
  readonly srcAddress: IpAddress;
  /** The sender's address in text form ("10.0.0.1", "fd00::1"). */
  readonly srcText: string;
  readonly srcPort: number;
  /** The address it was sent to (ours, or a broadcast or multicast address). */
  readonly dstAddress: IpAddress;
  readonly dstPort: number;
  /** The payload (a copy the receiver owns). */
  readonly data: Uint8Array;
}

/** Options of {@link NetStack.bindUdp}. */
export interface BindUdpOptions {
  /** Datagrams buffered for the async iterator before new ones are dropped (default 1024). */
  readonly queueLength?: number;
  /** Called for each datagram, instead of queueing it for the iterator. */
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

  /** @internal Called by the stack for a datagram addressed to this port (`payload` is the UDP message). */
  input(src: IpAddress, dst: IpAddress, payload: Uint8Array, verify: boolean): void {
    const r = parseUdp(payload, src, dst, { verifyChecksum: verify });
    if (!r.ok) return;
    const v4 = typeof src === 'number';
    const d: UdpDatagram = {
      family: v4 ? 4 : 6,
      srcAddress: v4 ? src : src.slice(),
      srcText: v4 ? formatIpv4(src) : formatIpv6(src),
      srcPort: r.value.srcPort,
      dstAddress: typeof dst === 'number' ? dst : dst.slice(),
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
   * Sends `data` to `address:port` from this endpoint's port; `address` is IPv4 or IPv6 (text, number or 16
   * bytes). Returns false when the frame could not be sent or queued behind address resolution. IPv4
   * datagrams larger than the MTU are fragmented; IPv6 ones must fit the MTU.
   */
  send(data: Uint8Array, address: string | IpAddress, port: number): boolean {
    if (this.#closed) throw new NetError('EXO_ERR_NET_CLOSED', `UDP port ${this.port} is closed`);
    let dst: IpAddress | null;
    if (typeof address === 'string')
      dst = address.includes(':') ? parseIpv6Address(address) : parseIpv4Address(address);
    else dst = typeof address === 'number' || address.length === 16 ? address : null;
    if (dst === null) throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IP address, got "${address}"`);
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected a UDP port 1..65535, got ${port}`);
    }
    if (data.length > 65507) {
      throw new NetError('EXO_ERR_NET_MESSAGE_TOO_LONG', `expected at most 65507 bytes, got ${data.length}`);
    }
    const repr = { srcPort: this.port, dstPort: port, payload: data };
    if (typeof dst === 'number') {
      const to = dst;
      return this.ip.sendIpv4(to, IpProtocol.UDP, 8 + data.length, (b, off) =>
        emitUdp(repr, b, off, this.ip.address, to),
      );
    }
    const to6 = dst;
    return this.ip.sendIpv6(to6, IpProtocol.UDP, 8 + data.length, (b, off, src) => emitUdp(repr, b, off, src, to6));
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
