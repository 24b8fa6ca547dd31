/**
 * What the transport layers (UDP, TCP) need from the IP layer of a stack. Internal to the stack.
 */
import type { Ipv4Address, Ipv6Address } from '@exonet/wire';
import type { Clock } from './clock.ts';

/** Writes an upper-layer message of a known length into `buf` at `offset`. */
export type L4Writer = (buf: Uint8Array, offset: number) => void;

/** The IP output paths and the facts transports depend on. */
export interface Ipv4Sender {
  /** Our IPv4 address. */
  readonly address: Ipv4Address;
  readonly clock: Clock;
  /** Largest IPv4 payload that needs no fragmentation (link MTU minus the 20-byte IP header). */
  readonly maxPayload: number;
  /**
   * Sends an IPv4 packet of `l4Length` payload bytes written by `write`. Resolves the next hop through ARP
   * (queueing while it resolves). Returns false when the packet could not be sent or queued (no route,
   * link refused). Packets over the MTU are fragmented unless `dontFragment` is set.
   */
  sendIpv4(
    dst: Ipv4Address,
    protocol: number,
    l4Length: number,
    write: L4Writer,
    opts?: { dontFragment?: boolean; ttl?: number },
  ): boolean;
  /**
   * Sends an IPv6 packet (no extension headers, no fragmentation) from `src` or else the source address that
   * suits `dst`; `write` gets the source for its checksum. Resolves the neighbour by NDP (queueing while it
   * resolves). Returns false when IPv6 is off, the packet is over the MTU or the link refused it.
   */
  sendIpv6(
    dst: Ipv6Address,
    nextHeader: number,
    l4Length: number,
    write: (buf: Uint8Array, offset: number, src: Ipv6Address) => void,
    src?: Ipv6Address,
  ): boolean;
  /** Our IPv6 source address for `dst`, or null when IPv6 is off. */
  ipv6SourceFor(dst: Ipv6Address): Ipv6Address | null;
  /** Random 32-bit numbers (ISNs, ports); injectable for deterministic tests. */
  random32(): number;
}
