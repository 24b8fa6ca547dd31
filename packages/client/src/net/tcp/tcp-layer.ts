/**
 * The TCP layer of a stack: demultiplexes segments to connections and listeners, answers segments for closed
 * ports with RST (RFC 9293 section 3.10.7.1), picks ephemeral ports and initial sequence numbers.
 */
import {
  emitTcp,
  type IpAddress,
  IpProtocol,
  type Ipv6Address,
  parseTcp,
  TcpFlags,
  type TcpRepr,
  tcpBufferLength,
  tcpSegmentLength,
} from '@exonet/wire';
import { NetError } from '../errors.ts';
import type { Ipv4Sender } from '../ip-sender.ts';
import { formatEndpoint, ipKey } from '../ip-text.ts';
import { seqAdd, seqGt } from './seq.ts';
import { type TcpConfig, TcpConnection, type TcpHost } from './tcp-connection.ts';
import { TcpListener, type TcpListenOptions } from './tcp-listener.ts';
import { type TcpConnectOptions, TcpSocket } from './tcp-socket.ts';

/** Options of the TCP layer (defaults for every connection). */
export interface TcpLayerOptions extends TcpConfig {
  /** Answer segments to closed ports with RST (default true). */
  readonly sendResets?: boolean;
  /** Verify checksums (default true). */
  readonly verifyChecksums?: boolean;
  /** Observes every segment sent and received, for tests and tracing. */
  readonly trace?: (dir: 'in' | 'out', seg: TcpRepr) => void;
}

const EMPTY = new Uint8Array(0);

function key(addr: IpAddress, rport: number, lport: number): string {
  return `${ipKey(addr)}:${rport}:${lport}`;
}

/** TCP over the stack's IPv4 address and, when IPv6 is on, its IPv6 addresses. */
export class TcpLayer implements TcpHost {
  readonly #conns = new Map<string, TcpConnection>();
  readonly #listeners = new Map<number, TcpListener>();
  readonly #owners = new Map<TcpConnection, TcpListener>();
  readonly #pendingConnects = new Map<TcpConnection, { resolve: (s: TcpSocket) => void; reject: (e: Error) => void }>();
  constructor(
    readonly ip: Ipv4Sender,
    readonly opts: TcpLayerOptions = {},
  ) {}

  /** IPv4: MTU - 20 - 20; IPv6: MTU - 40 - 20 (RFC 9293 section 3.7.1, RFC 8200 section 8.3). */
  localMssFor(remote: IpAddress): number {
    return typeof remote === 'number' ? this.ip.maxPayload - 20 : this.ip.maxPayload - 40;
  }

  get clock() {
    return this.ip.clock;
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  listen(port: number, opts: TcpListenOptions): TcpListener {
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected a TCP port 1..65535, got ${port}`);
    }
    if (this.#listeners.has(port)) throw new NetError('EXO_ERR_NET_PORT_IN_USE', `TCP port ${port} is in use`);
    const l = new TcpListener(port, opts, () => this.#listeners.delete(port));
    this.#listeners.set(port, l);
    return l;
  }

  connect(dst: IpAddress, port: number, opts: TcpConnectOptions): Promise<TcpSocket> {
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
      throw new NetError('EXO_ERR_NET_INVALID_ARGUMENT', `expected a TCP port 1..65535, got ${port}`);
    }
    let lport = opts.localPort ?? 0;
    if (lport === 0) {
      for (let i = 0; i < 64 && lport === 0; i++) {
        const p = 49152 + (this.ip.random32() % 16384);
        if (!this.#conns.has(key(dst, port, p)) && !this.#listeners.has(p)) lport = p;
      }
    }
    if (lport === 0 || this.#conns.has(key(dst, port, lport))) {
      return Promise.reject(new NetError('EXO_ERR_NET_PORT_IN_USE', 'no free local port for the connection'));
    }
    const local = typeof dst === 'number' ? this.ip.address : this.ip.ipv6SourceFor(dst);
    if (local === null) {
      return Promise.reject(new NetError('EXO_ERR_NET_NO_ROUTE', 'IPv6 is off on this stack'));
    }
    const conn = new TcpConnection(this, local, lport, dst, port, this.ip.random32(), false, {
      ...this.opts,
      ...opts,
    });
    this.#conns.set(key(dst, port, lport), conn);
    const sock = new TcpSocket(conn);
    const p = new Promise<TcpSocket>((resolve, reject) => this.#pendingConnects.set(conn, { resolve, reject }));
    const prev = conn.onChange;
    conn.onChange = () => {
      prev();
      const pend = this.#pendingConnects.get(conn);
      if (!pend) return;
      if (conn.state === 'CLOSED') {
        this.#pendingConnects.delete(conn);
        pend.reject(conn.error ?? new NetError('EXO_ERR_NET_CLOSED', 'connection closed during the handshake'));
      } else if (conn.state !== 'SYN-SENT' && conn.state !== 'SYN-RECEIVED') {
        this.#pendingConnects.delete(conn);
        pend.resolve(sock);
      }
    };
    conn.open();
    return p;
  }

  /** Segment input from the IP layer: the TCP segment `payload` between `src` and `dst` (ours). */
  input(src: IpAddress, dst: IpAddress, payload: Uint8Array): void {
    const ip = { src, dst };
    const r = parseTcp(payload, src, dst, { verifyChecksum: this.opts.verifyChecksums !== false });
    if (!r.ok) return;
    const seg = r.value;
    this.opts.trace?.('in', seg);
    const k = key(ip.src, seg.srcPort, seg.dstPort);
    const conn = this.#conns.get(k);
    if (conn) {
      // RFC 6191-style reuse: a new SYN beyond the old sequence space ends TIME-WAIT early.
      if (
        conn.state === 'TIME-WAIT' &&
        seg.flags & TcpFlags.SYN &&
        !(seg.flags & TcpFlags.ACK) &&
        seqGt(seg.seq, conn.rcvNxt) &&
        this.#listeners.has(seg.dstPort)
      ) {
        conn.abort(null);
      } else {
        conn.input(seg);
        return;
      }
    }
    const l = this.#listeners.get(seg.dstPort);
    if (l && seg.flags & TcpFlags.SYN && !(seg.flags & (TcpFlags.ACK | TcpFlags.RST | TcpFlags.FIN))) {
      if (!l.hasRoom) return; // backlog full: drop the SYN, the peer retries (as Linux does without syncookies)
      const c = new TcpConnection(this, ip.dst, seg.dstPort, ip.src, seg.srcPort, this.ip.random32(), true, {
        ...this.opts,
        ...l.options,
      });
      this.#conns.set(k, c);
      this.#owners.set(c, l);
      l.embryonic++;
      c.acceptSyn(seg);
      return;
    }
    if (l && !(seg.flags & TcpFlags.RST) && !(seg.flags & TcpFlags.ACK)) return; // LISTEN drops these silently
    this.#reset(ip, seg);
  }

  /** RST for a segment that belongs to no connection (RFC 9293 section 3.10.7.1). */
  #reset(ip: { src: IpAddress; dst: IpAddress }, seg: TcpRepr): void {
    if (seg.flags & TcpFlags.RST || this.opts.sendResets === false) return;
    const rst: TcpRepr =
      seg.flags & TcpFlags.ACK
        ? {
            srcPort: seg.dstPort,
            dstPort: seg.srcPort,
            seq: seg.ack,
            ack: 0,
            flags: TcpFlags.RST,
            window: 0,
            urgent: 0,
            options: {},
            payload: EMPTY,
          }
        : {
            srcPort: seg.dstPort,
            dstPort: seg.srcPort,
            seq: 0,
            ack: seqAdd(seg.seq, tcpSegmentLength(seg)),
            flags: TcpFlags.RST | TcpFlags.ACK,
            window: 0,
            urgent: 0,
            options: {},
            payload: EMPTY,
          };
    this.#send(ip.dst, ip.src, rst);
  }

  #send(src: IpAddress, dst: IpAddress, seg: TcpRepr): boolean {
    this.opts.trace?.('out', seg);
    const len = tcpBufferLength(seg);
    if (typeof dst === 'number') {
      const from = this.ip.address;
      // DF set: TCP sizes segments by MSS and relies on PMTU discovery (RFC 1191), as Linux does.
      return this.ip.sendIpv4(dst, IpProtocol.TCP, len, (b, off) => emitTcp(seg, b, off, from, dst), {
        dontFragment: true,
      });
    }
    return this.ip.sendIpv6(
      dst,
      IpProtocol.TCP,
      len,
      (b, off, from) => emitTcp(seg, b, off, from, dst),
      src as Ipv6Address,
    );
  }

  // TcpHost
  sendSegment(conn: TcpConnection, seg: TcpRepr): boolean {
    return this.#send(conn.localAddress, conn.remoteAddress, seg);
  }

  released(conn: TcpConnection): void {
    const k = key(conn.remoteAddress, conn.remotePort, conn.localPort);
    if (this.#conns.get(k) === conn) this.#conns.delete(k);
    const l = this.#owners.get(conn);
    if (l) {
      this.#owners.delete(conn);
      if (conn.passive && l.embryonic > 0 && !this.#acceptedSet.has(conn)) l.embryonic--;
    }
    this.#acceptedSet.delete(conn);
  }

  readonly #acceptedSet = new WeakSet<TcpConnection>();

  established(conn: TcpConnection): void {
    const l = this.#owners.get(conn);
    if (!l) return;
    l.embryonic--;
    this.#acceptedSet.add(conn);
    if (!l.push(new TcpSocket(conn))) conn.abort(null);
  }

  /** Aborts every connection and closes listeners (the stack is closing). */
  closeAll(): void {
    for (const l of [...this.#listeners.values()]) l.close();
    for (const c of [...this.#conns.values()]) c.abort(new NetError('EXO_ERR_NET_CLOSED', 'the stack is closed'));
  }

  toString(): string {
    return [...this.#conns.values()].map((c) => `${c} ${formatEndpoint(c.remoteAddress, c.remotePort)}`).join('\n');
  }
}
