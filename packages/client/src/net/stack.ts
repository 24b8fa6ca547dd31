/**
 * The task-side network stack over a {@link FrameLink}: Ethernet in and out, ARP responder and resolver,
 * IPv4 with reassembly, the ICMP echo responder, optional IPv6 neighbour discovery and ICMPv6 echo, and the
 * UDP and TCP layers. No sockets: the stack is a library inside the task.
 */
import { randomBytes } from 'node:crypto';
import {
  ArpOperation,
  EtherType,
  emitArp,
  emitEthernet,
  emitIcmpv4,
  emitIcmpv6,
  emitIpv4,
  emitIpv6,
  formatIpv4,
  formatIpv6,
  fragmentIpv4,
  type IpAddress,
  IpProtocol,
  type Ipv4Address,
  Ipv4Reassembler,
  type Ipv4Repr,
  type Ipv6Address,
  type Ipv6Repr,
  icmpv4BufferLength,
  icmpv6BufferLength,
  ipv4Mask,
  ipv4Repr,
  ipv6Equals,
  ipv6MulticastMac,
  isMulticastMac,
  linkLocalFromMac,
  MAC_BROADCAST,
  MAC_ZERO,
  type MacAddress,
  macEquals,
  parseArp,
  parseEthernet,
  parseIcmpv4,
  parseIcmpv6,
  parseIpv4,
  parseIpv4Address,
  parseIpv4Cidr,
  parseIpv6,
  parseIpv6Address,
  solicitedNodeMulticast,
  walkIpv6Extensions,
} from '@exonet/wire';
import { ArpCache, type ArpOptions } from './arp-cache.ts';
import { type Clock, systemClock } from './clock.ts';
import { NetError } from './errors.ts';
import type { FrameLink } from './frame-link.ts';
import type { Ipv4Sender, L4Writer } from './ip-sender.ts';
import { TcpLayer, type TcpLayerOptions } from './tcp/tcp-layer.ts';
import type { TcpListener, TcpListenOptions } from './tcp/tcp-listener.ts';
import type { TcpConnectOptions, TcpSocket } from './tcp/tcp-socket.ts';
import { type BindUdpOptions, UdpEndpoint } from './udp-endpoint.ts';

/** Options of {@link createStack}. */
export interface StackOptions {
  /** The frame I/O: the driver channel, a UDP tunnel, an in-memory pair. */
  readonly link: FrameLink;
  /** Our IPv4 address with prefix, e.g. "10.77.0.2/24". */
  readonly ipv4: string;
  /** Default gateway for off-link destinations. */
  readonly gateway?: string;
  /** Answer ARP requests for our address (default true). In exonet one task may do this for all. */
  readonly arpResponder?: boolean;
  /** Answer ICMP echo requests (default true). */
  readonly icmpEcho?: boolean;
  /**
   * Learn the MAC of on-link senders from their IPv4 frames when no ARP entry exists (default true), so a task
   * whose grant lets no ARP replies in can still answer whoever talks to it.
   */
  readonly learnFromIp?: boolean;
  /**
   * IPv6: answer neighbour solicitations and ICMPv6 echo for the link-local address (from the MAC) and these
   * extra addresses. Off unless given.
   */
  readonly ipv6?: { readonly addresses?: readonly string[] };
  readonly arp?: ArpOptions;
  readonly tcp?: TcpLayerOptions;
  /** Time source; {@link ManualClock} in tests. */
  readonly clock?: Clock;
  /** Random 32-bit source for ISNs and ephemeral ports (default: crypto). */
  readonly random32?: () => number;
  /** Verify checksums on receive (default true). */
  readonly verifyChecksums?: boolean;
}

/** Counters of the stack, for status output and tests. */
export interface StackStats {
  rxFrames: number;
  txFrames: number;
  rxDropped: number;
  txFailed: number;
  arpRequestsAnswered: number;
  icmpEchoAnswered: number;
  icmpv6EchoAnswered: number;
  neighborAdvertisementsSent: number;
  /** Frames whose handling hit a bug (caught so a hostile frame cannot take the task down); should stay 0. */
  internalErrors: number;
}

/** Creates a stack over a link and starts receiving. */
export function createStack(opts: StackOptions): NetStack {
  return new NetStack(opts);
}

function cryptoRandom32(): number {
  return randomBytes(4).readUInt32BE(0);
}

/** A running stack. Create with {@link createStack}. */
export class NetStack implements Ipv4Sender {
  readonly link: FrameLink;
  readonly clock: Clock;
  readonly mac: MacAddress;
  readonly address: Ipv4Address;
  readonly prefixLength: number;
  readonly gateway: Ipv4Address | null;
  readonly maxPayload: number;
  readonly stats: StackStats = {
    rxFrames: 0,
    txFrames: 0,
    rxDropped: 0,
    txFailed: 0,
    arpRequestsAnswered: 0,
    icmpEchoAnswered: 0,
    icmpv6EchoAnswered: 0,
    neighborAdvertisementsSent: 0,
    internalErrors: 0,
  };
  /** IPv6 addresses we answer for (empty when IPv6 is off). */
  readonly ipv6Addresses: readonly Ipv6Address[];

  readonly #arp: ArpCache;
  readonly #reassembler = new Ipv4Reassembler();
  readonly #udp = new Map<number, UdpEndpoint>();
  readonly #tcp: TcpLayer;
  readonly #nd: ArpCache<string>;
  readonly #random32: () => number;
  readonly #opts: StackOptions;
  readonly #unsubscribe: () => void;
  #ident: number;
  #closed = false;
  // Re-entrancy guard: frames arriving while we process (a synchronous link) are queued, not nested.
  #busy = false;
  readonly #backlog: Uint8Array[] = [];

  constructor(opts: StackOptions) {
    const cidr = parseIpv4Cidr(opts.ipv4);
    if (!cidr)
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IPv4 address/prefix, got "${opts.ipv4}"`);
    this.#opts = opts;
    this.link = opts.link;
    this.clock = opts.clock ?? systemClock();
    this.mac = opts.link.mac.slice();
    this.address = cidr.address;
    this.prefixLength = cidr.prefixLength;
    this.gateway = opts.gateway ? parseIpv4Address(opts.gateway) : null;
    if (opts.gateway && this.gateway === null) {
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IPv4 gateway, got "${opts.gateway}"`);
    }
    this.maxPayload = opts.link.mtu - 20;
    this.#random32 = opts.random32 ?? cryptoRandom32;
    this.#ident = this.#random32() & 0xffff;
    this.ipv6Addresses = opts.ipv6
      ? [
          linkLocalFromMac(this.mac),
          ...(opts.ipv6.addresses ?? []).map((a) => {
            const v = parseIpv6Address(a);
            if (!v) throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IPv6 address, got "${a}"`);
            return v;
          }),
        ]
      : [];
    this.#arp = new ArpCache(
      this.clock,
      (ip) => this.#sendArp(ArpOperation.REQUEST, MAC_BROADCAST, MAC_ZERO, ip),
      (frame, mac) => {
        frame.set(mac, 0);
        this.#transmit(frame);
      },
      opts.arp,
    );
    this.#nd = new ArpCache<string>(
      this.clock,
      (key) => this.#solicit(unkey6(key)),
      (frame, mac) => {
        frame.set(mac, 0);
        this.#transmit(frame);
      },
      opts.arp,
      { describe: (k) => formatIpv6(unkey6(k)), protocol: 'neighbour discovery' },
    );
    this.#tcp = new TcpLayer(this, { verifyChecksums: opts.verifyChecksums, ...opts.tcp });
    this.#unsubscribe = this.link.onFrames((frames) => this.handleFrames(frames));
  }

  /** Random 32-bit number (ISNs, ephemeral ports). */
  random32(): number {
    return this.#random32() >>> 0;
  }

  /** Binds a UDP port; datagrams to it are delivered to the endpoint. */
  bindUdp(port: number, opts: BindUdpOptions = {}): UdpEndpoint {
    this.#checkOpen();
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected a UDP port 1..65535, got ${port}`);
    }
    if (this.#udp.has(port)) throw new NetError('EXO_ERR_NET_PORT_IN_USE', `UDP port ${port} is already bound`);
    const ep = new UdpEndpoint(this, port, opts, () => this.#udp.delete(port));
    this.#udp.set(port, ep);
    return ep;
  }

  /** Listens for TCP connections on `port` (passive open). */
  tcpListen(port: number, opts: TcpListenOptions = {}): TcpListener {
    this.#checkOpen();
    return this.#tcp.listen(port, opts);
  }

  /** Opens a TCP connection (active open); resolves once established. */
  tcpConnect(address: string | IpAddress, port: number, opts: TcpConnectOptions = {}): Promise<TcpSocket> {
    this.#checkOpen();
    let dst: IpAddress | null;
    if (typeof address === 'string')
      dst = address.includes(':') ? parseIpv6Address(address) : parseIpv4Address(address);
    else dst = typeof address === 'number' || address.length === 16 ? address : null;
    if (dst === null) throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IP address, got "${address}"`);
    return this.#tcp.connect(dst, port, opts);
  }

  /** Resolves an on-link IPv4 address to its MAC through ARP. */
  resolve(address: string | Ipv4Address): Promise<MacAddress> {
    const ip = typeof address === 'number' ? address : parseIpv4Address(address);
    if (ip === null) throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected an IPv4 address, got "${address}"`);
    return this.#arp.resolve(ip);
  }

  /** Number of TCP connections in any state (TIME-WAIT included). */
  get tcpConnectionCount(): number {
    return this.#tcp.connectionCount;
  }

  /** Stops receiving, aborts connections and closes endpoints. Does not close the link. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#tcp.closeAll();
    for (const ep of [...this.#udp.values()]) ep.close();
    this.#arp.clear(new NetError('EXO_ERR_NET_CLOSED', 'the stack is closed'));
    this.#nd.clear(new NetError('EXO_ERR_NET_CLOSED', 'the stack is closed'));
  }

  #checkOpen(): void {
    if (this.#closed) throw new NetError('EXO_ERR_NET_CLOSED', 'the stack is closed');
  }

  /** Entry point for received frames (the link's handler). */
  handleFrames(frames: readonly Uint8Array[]): void {
    if (this.#closed) return;
    if (this.#busy) {
      for (const f of frames) this.#backlog.push(f.slice());
      return;
    }
    this.#busy = true;
    try {
      for (const f of frames) this.#handleFrame(f);
      while (this.#backlog.length > 0) this.#handleFrame(this.#backlog.shift()!);
    } finally {
      this.#busy = false;
    }
  }

  #handleFrame(frame: Uint8Array): void {
    this.stats.rxFrames++;
    try {
      const eth = parseEthernet(frame);
      if (!eth.ok || eth.value.vlans.length > 0) {
        this.#drop();
        return;
      }
      const e = eth.value;
      if (!macEquals(e.dst, this.mac) && !isMulticastMac(e.dst)) {
        this.#drop();
        return;
      }
      switch (e.etherType) {
        case EtherType.ARP: {
          this.#handleArp(e.payload);
          return;
        }
        case EtherType.IPV4: {
          this.#handleIpv4(e.payload, e.src);
          return;
        }
        case EtherType.IPV6: {
          this.#handleIpv6(e.payload, e.src);
          return;
        }
        default: {
          this.#drop();
          return;
        }
      }
    } catch (err) {
      // A bug must not take the task down on a hostile frame; count it as a drop.
      this.#drop();
      this.stats.internalErrors++;
      if (process.env.EXONET_DEBUG) console.error('exonet stack: frame handling failed', err);
    }
  }

  #drop(): void {
    this.stats.rxDropped++;
  }

  #handleArp(payload: Uint8Array): void {
    const r = parseArp(payload);
    if (!r.ok) {
      this.#drop();
      return;
    }
    const a = r.value;
    // RFC 826 "packet reception": merge the sender if known; if we are the target, add it and reply.
    const forUs = a.targetIp === this.address;
    if (a.senderIp !== 0 && (forUs || this.#arp.has(a.senderIp))) this.#arp.learn(a.senderIp, a.senderMac);
    if (forUs && a.operation === ArpOperation.REQUEST && this.#opts.arpResponder !== false) {
      this.stats.arpRequestsAnswered++;
      this.#sendArp(ArpOperation.REPLY, a.senderMac, a.senderMac, a.senderIp);
    }
  }

  #sendArp(op: number, ethDst: MacAddress, targetMac: MacAddress, targetIp: Ipv4Address): void {
    const frame = new Uint8Array(42);
    emitArp({ operation: op, senderMac: this.mac, senderIp: this.address, targetMac, targetIp }, frame, 14);
    emitEthernet(
      { dst: ethDst, src: this.mac, etherType: EtherType.ARP, vlans: [], payload: frame.subarray(14) },
      frame,
    );
    this.#transmit(frame);
  }

  #isOnLink(ip: Ipv4Address): boolean {
    const m = ipv4Mask(this.prefixLength);
    return (ip & m) >>> 0 === (this.address & m) >>> 0;
  }

  #handleIpv4(payload: Uint8Array, srcMac: MacAddress): void {
    const r = parseIpv4(payload, { verifyChecksum: this.#opts.verifyChecksums !== false });
    if (!r.ok) {
      this.#drop();
      return;
    }
    let ip: Ipv4Repr | null = r.value;
    const bcast = (this.address | ~ipv4Mask(this.prefixLength)) >>> 0;
    if (ip.dst !== this.address && ip.dst !== 0xffffffff && ip.dst !== bcast) {
      this.#drop();
      return;
    }
    if (
      this.#opts.learnFromIp !== false &&
      ip.dst === this.address &&
      this.#isOnLink(ip.src) &&
      ip.src !== this.address &&
      !isMulticastMac(srcMac) &&
      !this.#arp.lookup(ip.src)
    ) {
      this.#arp.learn(ip.src, srcMac);
    }
    ip = this.#reassembler.push(ip, this.clock.now());
    if (!ip) return;
    switch (ip.protocol) {
      case IpProtocol.ICMP: {
        this.#handleIcmpv4(ip);
        return;
      }
      case IpProtocol.UDP: {
        this.#handleUdp(ip);
        return;
      }
      case IpProtocol.TCP:
        if (ip.dst !== this.address) {
          this.#drop();
          return;
        } // TCP is unicast only (RFC 9293 section 3.9.1)
        {
          this.#tcp.input(ip.src, ip.dst, ip.payload);
          return;
        }
      default: {
        this.#drop();
        return;
      }
    }
  }

  #handleIcmpv4(ip: Ipv4Repr): void {
    const r = parseIcmpv4(ip.payload, { verifyChecksum: this.#opts.verifyChecksums !== false });
    if (!r.ok) {
      this.#drop();
      return;
    }
    const m = r.value;
    // RFC 1122 section 3.2.2.6: answer echo requests to our unicast address, same identifier, sequence and data.
    if (m.kind !== 'echo-request' || ip.dst !== this.address || this.#opts.icmpEcho === false) return;
    const reply = { kind: 'echo-reply' as const, ident: m.ident, seq: m.seq, data: m.data };
    this.stats.icmpEchoAnswered++;
    this.sendIpv4(ip.src, IpProtocol.ICMP, icmpv4BufferLength(reply), (b, off) => emitIcmpv4(reply, b, off));
  }

  #handleUdp(ip: Ipv4Repr): void {
    // Parsed by the endpoint's owner only after the port lookup, so datagrams to unbound ports cost little.
    if (ip.payload.length < 8) {
      this.#drop();
      return;
    }
    const port = (ip.payload[2] << 8) | ip.payload[3];
    const ep = this.#udp.get(port);
    if (!ep) {
      this.#drop();
      return;
    }
    ep.input(ip.src, ip.dst, ip.payload, this.#opts.verifyChecksums !== false);
  }

  /** {@inheritDoc Ipv4Sender.sendIpv4} */
  sendIpv4(
    dst: Ipv4Address,
    protocol: number,
    l4Length: number,
    write: L4Writer,
    opts: { dontFragment?: boolean; ttl?: number } = {},
  ): boolean {
    if (this.#closed) return false;
    let nextHop = dst;
    let dstMac: MacAddress | undefined;
    const bcast = (this.address | ~ipv4Mask(this.prefixLength)) >>> 0;
    if (dst === 0xffffffff || dst === bcast) dstMac = MAC_BROADCAST;
    else if (!this.#isOnLink(dst)) {
      if (this.gateway === null) return false;
      nextHop = this.gateway;
    }
    const ident = this.#ident;
    this.#ident = (this.#ident + 1) & 0xffff;
    // Common case: it fits, so the transport writes straight into the frame (no copy); else fragment.
    const fits = 20 + l4Length <= this.link.mtu;
    const whole = fits ? new Uint8Array(34 + l4Length) : null;
    const l4 = whole ? whole.subarray(34) : new Uint8Array(l4Length);
    write(l4, 0);
    const base = ipv4Repr({
      src: this.address,
      dst,
      protocol,
      payload: l4,
      ident,
      ttl: opts.ttl ?? 64,
      dontFragment: opts.dontFragment ?? false,
    });
    let packets: Ipv4Repr[];
    try {
      packets = fits ? [base] : fragmentIpv4(base, this.link.mtu);
    } catch {
      return false; // DF set and too big: the caller (TCP) sizes segments by MSS, so this is a caller bug
    }
    let ok = true;
    for (const p of packets) {
      const frame = whole ?? new Uint8Array(14 + 20 + p.options.length + p.payload.length);
      emitIpv4(p, frame, 14);
      emitEthernet(
        { dst: dstMac ?? MAC_ZERO, src: this.mac, etherType: EtherType.IPV4, vlans: [], payload: frame.subarray(14) },
        frame,
      );
      if (dstMac) {
        ok = this.#transmit(frame) && ok;
        continue;
      }
      const mac = this.#arp.lookup(nextHop);
      if (mac) {
        frame.set(mac, 0);
        ok = this.#transmit(frame) && ok;
      } else {
        this.#arp.enqueue(nextHop, frame);
      }
    }
    return ok;
  }

  #transmit(frame: Uint8Array): boolean {
    if (this.#closed) return false;
    const ok = this.link.send(frame);
    if (ok) this.stats.txFrames++;
    else this.stats.txFailed++;
    return ok;
  }

  // --- IPv6: neighbour discovery responder and echo (RFC 4861, RFC 4443) ---

  #isOurIpv6(a: Ipv6Address): boolean {
    return this.ipv6Addresses.some((x) => ipv6Equals(x, a));
  }

  #handleIpv6(payload: Uint8Array, srcMac: MacAddress): void {
    if (this.ipv6Addresses.length === 0) {
      this.#drop();
      return;
    }
    const r = parseIpv6(payload);
    if (!r.ok) {
      this.#drop();
      return;
    }
    const ip = r.value;
    const forUs = this.#isOurIpv6(ip.dst);
    const solicited = this.ipv6Addresses.some((a) => ipv6Equals(solicitedNodeMulticast(a), ip.dst));
    const allNodes = ipv6Equals(ip.dst, ALL_NODES);
    if (!forUs && !solicited && !allNodes) {
      this.#drop();
      return;
    }
    const unspecified = ip.src.every((b) => b === 0);
    if (forUs && !unspecified && !isMulticastMac(srcMac) && this.#opts.learnFromIp !== false) {
      const k = key6(ip.src);
      if (!this.#nd.lookup(k)) this.#nd.learn(k, srcMac);
    }
    const walk = walkIpv6Extensions(ip.nextHeader, ip.payload);
    // Fragmented IPv6 is not reassembled (see docs/task-stack.md).
    if (!walk.ok || walk.value.fragment) {
      this.#drop();
      return;
    }
    const body = ip.payload.subarray(walk.value.offset);
    if (walk.value.protocol === IpProtocol.UDP && forUs && !unspecified) {
      const ep = body.length >= 8 ? this.#udp.get((body[2] << 8) | body[3]) : undefined;
      if (!ep) {
        this.#drop();
        return;
      }
      ep.input(ip.src, ip.dst, body, this.#opts.verifyChecksums !== false);
      return;
    }
    if (walk.value.protocol === IpProtocol.TCP && forUs && !unspecified) {
      this.#tcp.input(ip.src, ip.dst, body);
      return;
    }
    if (walk.value.protocol !== IpProtocol.ICMPV6) {
      this.#drop();
      return;
    }
    const m = parseIcmpv6(body, ip.src, ip.dst, { verifyChecksum: this.#opts.verifyChecksums !== false });
    if (!m.ok) {
      this.#drop();
      return;
    }
    const msg = m.value;
    if (msg.kind === 'neighbor-solicitation') {
      // RFC 4861 section 7.1.1: hop limit 255 proves the message was not forwarded.
      if (ip.hopLimit !== 255 || !this.#isOurIpv6(msg.target)) {
        this.#drop();
        return;
      }
      if (!unspecified && msg.sourceMac) this.#nd.learn(key6(ip.src), msg.sourceMac);
      // Section 7.2.4: answer to the soliciting unicast, or to all-nodes when the source was unspecified (DAD).
      const dst = unspecified ? ALL_NODES : ip.src;
      const dstMac = unspecified ? ipv6MulticastMac(ALL_NODES) : (msg.sourceMac ?? srcMac);
      const na = {
        kind: 'neighbor-advertisement' as const,
        router: false,
        solicited: !unspecified,
        override: true,
        target: msg.target,
        targetMac: this.mac,
      };
      this.stats.neighborAdvertisementsSent++;
      this.#sendIcmpv6(msg.target, dst, dstMac, 255, icmpv6BufferLength(na), (b, o) =>
        emitIcmpv6(na, b, o, msg.target, dst),
      );
      return;
    }
    if (msg.kind === 'neighbor-advertisement') {
      // Section 7.2.5: an advertisement with the target's link-layer address completes resolution.
      if (ip.hopLimit === 255 && msg.targetMac) this.#nd.learn(key6(msg.target), msg.targetMac);
      return;
    }
    if (msg.kind === 'echo-request' && forUs && !unspecified && this.#opts.icmpEcho !== false) {
      const reply = { kind: 'echo-reply' as const, ident: msg.ident, seq: msg.seq, data: msg.data };
      const mac = this.#nd.lookup(key6(ip.src)) ?? srcMac;
      this.stats.icmpv6EchoAnswered++;
      this.#sendIcmpv6(ip.dst, ip.src, mac, 64, icmpv6BufferLength(reply), (b, o) =>
        emitIcmpv6(reply, b, o, ip.dst, ip.src),
      );
    }
  }

  /** Our source address for `dst` (RFC 6724 in miniature: link-local to link-local, else the first other). */
  #sourceFor6(dst: Ipv6Address): Ipv6Address {
    const linkLocal = dst[0] === 0xfe && (dst[1] & 0xc0) === 0x80;
    const multicastLinkScope = dst[0] === 0xff && (dst[1] & 0x0f) === 2;
    if (linkLocal || multicastLinkScope || this.ipv6Addresses.length === 1) return this.ipv6Addresses[0]!;
    return this.ipv6Addresses[1]!;
  }

  /** {@inheritDoc Ipv4Sender.ipv6SourceFor} */
  ipv6SourceFor(dst: Ipv6Address): Ipv6Address | null {
    return this.ipv6Addresses.length === 0 ? null : this.#sourceFor6(dst);
  }

  /** Sends a neighbour solicitation for `target` to its solicited-node multicast address (RFC 4861 7.2.2). */
  #solicit(target: Ipv6Address): void {
    const src = this.#sourceFor6(target);
    const dst = solicitedNodeMulticast(target);
    const ns = { kind: 'neighbor-solicitation' as const, target, sourceMac: this.mac };
    this.#sendIcmpv6(src, dst, ipv6MulticastMac(dst), 255, icmpv6BufferLength(ns), (b, o) =>
      emitIcmpv6(ns, b, o, src, dst),
    );
  }

  /** {@inheritDoc Ipv4Sender.sendIpv6} */
  sendIpv6(
    dst: Ipv6Address,
    nextHeader: number,
    l4Length: number,
    write: (buf: Uint8Array, offset: number, src: Ipv6Address) => void,
    from?: Ipv6Address,
  ): boolean {
    if (this.#closed || this.ipv6Addresses.length === 0 || 40 + l4Length > this.link.mtu) return false;
    const src = from ?? this.#sourceFor6(dst);
    const frame = new Uint8Array(54 + l4Length);
    write(frame, 54, src);
    emitIpv6(
      { src, dst, nextHeader, hopLimit: 64, trafficClass: 0, flowLabel: 0, payload: frame.subarray(54) },
      frame,
      14,
    );
    emitEthernet(
      { dst: MAC_ZERO, src: this.mac, etherType: EtherType.IPV6, vlans: [], payload: frame.subarray(14) },
      frame,
    );
    if (dst[0] === 0xff) {
      frame.set(ipv6MulticastMac(dst), 0);
      return this.#transmit(frame);
    }
    const mac = this.#nd.lookup(key6(dst));
    if (mac) {
      frame.set(mac, 0);
      return this.#transmit(frame);
    }
    return this.#nd.enqueue(key6(dst), frame);
  }

  #sendIcmpv6(
    src: Ipv6Address,
    dst: Ipv6Address,
    dstMac: MacAddress,
    hopLimit: number,
    len: number,
    write: L4Writer,
  ): void {
    const frame = new Uint8Array(14 + 40 + len);
    write(frame, 54);
    const ip: Ipv6Repr = {
      src,
      dst,
      nextHeader: IpProtocol.ICMPV6,
      hopLimit,
      trafficClass: 0,
      flowLabel: 0,
      payload: frame.subarray(54),
    };
    emitIpv6(ip, frame, 14);
    emitEthernet(
      { dst: dstMac, src: this.mac, etherType: EtherType.IPV6, vlans: [], payload: frame.subarray(14) },
      frame,
    );
    this.#transmit(frame);
  }

  /** A one-line summary for status output. */
  describe(): string {
    return `${formatIpv4(this.address)}/${this.prefixLength}`;
  }
}

const ALL_NODES: Ipv6Address = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

function key6(a: Ipv6Address): string {
  return Buffer.from(a.subarray(0, 16)).toString('hex');
}

function unkey6(k: string): Ipv6Address {
  return Uint8Array.from(Buffer.from(k, 'hex'));
}
