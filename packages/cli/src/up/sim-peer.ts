import { createStack, type FrameHandler, type FrameLink, type NetStack } from '@exonet/client';
import type { Wire, WirePort } from '@exonet/net-driver';
import {
  EtherType,
  emitEthernet,
  emitIcmpv4,
  emitIpv4,
  formatIpv4,
  type Icmpv4Repr,
  IpProtocol,
  ipv4Repr,
  parseEthernet,
  parseIcmpv4,
  parseIpv4,
  parseIpv4Address,
} from '@exonet/wire';

/** What the simulated peer saw, one line each, for `exonet up`'s log. */
export type PeerLog = (line: string) => void;

/** Counters of the simulated peer's probes. */
export interface PeerStats {
  pings: number;
  pingReplies: number;
  udpSent: number;
  udpEchoed: number;
  httpRequests: number;
  httpOk: number;
}

/**
 * A built-in simulated peer: a host on the other end of the NIC's wire, with its own network stack, that
 * pings the exonet address, sends UDP datagrams to its echo port and fetches its HTTP page, so that a newcomer
 * running `exonet up` sees packets flow within seconds without any Linux set-up.
 */
export class SimulatedPeer implements Wire {
  readonly description: string;
  readonly stack: NetStack;
  readonly stats: PeerStats = { pings: 0, pingReplies: 0, udpSent: 0, udpEchoed: 0, httpRequests: 0, httpOk: 0 };
  readonly #address: string;
  readonly #target: string;
  #port: WirePort | undefined;
  #handler: FrameHandler | null = null;
  readonly #outbox: Uint8Array[] = [];
  #flushing = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #pending = new Map<number, number>();
  #seq = 0;
  #closed = false;

  /**
   * @param address the peer's own address with prefix ("10.77.0.1/24")
   * @param target the exonet address it talks to ("10.77.0.2")
   */
  constructor(address: string, target: string) {
    this.#address = address;
    this.#target = target;
    this.description = `sim: a simulated host at ${address.split('/')[0]} talking to ${target}`;
    const link: FrameLink = {
      mac: Uint8Array.of(0x02, 0x51, 0x4d, 0x00, 0x00, 0x01),
      mtu: 1500,
      send: (frame) => this.#send(frame),
      onFrames: (handler) => {
        this.#handler = handler;
        return () => {
          this.#handler = null;
        };
      },
    };
    this.stack = createStack({ link, ipv4: address });
  }

  attach(port: WirePort): void {
    this.#port = port;
    port.setCarrier(true);
  }

  /** A frame the NIC sent: ping replies are counted here, everything goes to the peer's stack. */
  transmit(data: Uint8Array, offset: number, length: number): void {
    const frame = data.slice(offset, offset + length);
    this.#notePingReply(frame);
    this.#handler?.([frame]);
  }

  /** Starts probing every `intervalMs`: a ping and a UDP datagram each time, an HTTP GET every third. */
  start(log: PeerLog, intervalMs = 1000): void {
    const echo = this.stack.bindUdp(40_007, {
      onDatagram: (d) => {
        this.stats.udpEchoed++;
        log(
          `peer: UDP echo from ${formatIpv4(d.srcAddress as number)}:${d.srcPort}: "${new TextDecoder().decode(d.data)}"`,
        );
      },
    });
    let round = 0;
    const tick = async () => {
      round++;
      try {
        const mac = await this.stack.resolve(this.#target);
        this.#ping(mac);
        this.stats.udpSent++;
        echo.send(new TextEncoder().encode(`hello #${round}`), this.#target, 7);
        if (round % 3 === 1) await this.#http(log);
      } catch (err) {
        log(`peer: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    const loop = () => {
      if (this.#closed) return;
      void tick().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(loop, intervalMs);
      });
    };
    this.#timer = setTimeout(loop, 200);
    this.#log = log;
  }

  #log: PeerLog = () => {};

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.stack.close();
    this.#port?.setCarrier(false);
    this.#port = undefined;
  }

  /** Frames from the peer's stack go onto the wire after the current call stack (the NIC is not re-entered). */
  #send(frame: Uint8Array): boolean {
    if (this.#closed || !this.#port) return false;
    // A real MAC pads short frames to the 60-byte minimum (64 with the FCS); the NIC drops runts.
    const padded = new Uint8Array(Math.max(60, frame.length));
    padded.set(frame);
    this.#outbox.push(padded);
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(() => {
        this.#flushing = false;
        for (const f of this.#outbox.splice(0)) this.#port?.deliver(f);
      });
    }
    return true;
  }

  #ping(mac: Uint8Array): void {
    const ident = 0x5e1d;
    const seq = ++this.#seq & 0xffff;
    const icmp: Icmpv4Repr = { kind: 'echo-request', ident, seq, data: new TextEncoder().encode('exonet sim ping!') };
    const l4 = new Uint8Array(8 + 16);
    emitIcmpv4(icmp, l4, 0);
    const src = parseIpv4Address(this.#address.split('/')[0])!;
    const dst = parseIpv4Address(this.#target)!;
    const ip = new Uint8Array(20 + l4.length);
    emitIpv4(ipv4Repr({ src, dst, protocol: IpProtocol.ICMP, payload: l4 }), ip, 0);
    const frame = new Uint8Array(14 + ip.length);
    emitEthernet({ dst: mac, src: this.stack.mac, etherType: EtherType.IPV4, vlans: [], payload: ip }, frame, 0);
    this.#pending.set(seq, performance.now());
    this.stats.pings++;
    this.#send(frame);
  }

  #notePingReply(frame: Uint8Array): void {
    const eth = parseEthernet(frame);
    if (!eth.ok || eth.value.etherType !== EtherType.IPV4) return;
    const ip = parseIpv4(eth.value.payload);
    if (!ip.ok || ip.value.protocol !== IpProtocol.ICMP) return;
    const icmp = parseIcmpv4(ip.value.payload);
    if (!icmp.ok || icmp.value.kind !== 'echo-reply') return;
    const sent = this.#pending.get(icmp.value.seq);
    if (sent === undefined) return;
    this.#pending.delete(icmp.value.seq);
    this.stats.pingReplies++;
    this.#log(
      `peer: ping ${this.#target}: reply seq=${icmp.value.seq} time=${(performance.now() - sent).toFixed(2)} ms`,
    );
  }

  async #http(log: PeerLog): Promise<void> {
    this.stats.httpRequests++;
    const sock = await this.stack.tcpConnect(this.#target, 80);
    await sock.write(`GET / HTTP/1.1\r\nHost: ${this.#target}\r\nConnection: close\r\n\r\n`);
    const body = new TextDecoder().decode(await sock.readAll());
    await sock.close();
    const status = body.split('\r\n')[0] ?? '';
    if (status.includes(' 200 ')) this.stats.httpOk++;
    log(`peer: HTTP GET http://${this.#target}/ -> ${status} ${body.split('\r\n\r\n')[1]?.trim() ?? ''}`);
  }
}
