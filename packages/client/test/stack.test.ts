import {
  ArpOperation,
  EtherType,
  emitArp,
  emitEthernet,
  emitIcmpv4,
  emitIcmpv6,
  emitIpv4,
  emitIpv6,
  emitUdp,
  IpProtocol,
  icmpv4BufferLength,
  icmpv6BufferLength,
  ipv4Repr,
  linkLocalFromMac,
  MAC_BROADCAST,
  parseArp,
  parseEthernet,
  parseIcmpv4,
  parseIcmpv6,
  parseIpv4,
  parseIpv4Address,
  parseIpv6,
  parseIpv6Address,
  parseUdp,
  solicitedNodeMulticast,
} from '@exonet/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArpCache, createLinkPair, createStack, ManualClock, NetError } from '../src/net/index.ts';
import { turn } from './helpers/sim.ts';

const PEER_MAC = Uint8Array.of(2, 0, 0, 0, 0, 0xa);
const PEER_IP = parseIpv4Address('10.0.0.1')!;
const OUR_IP = parseIpv4Address('10.0.0.2')!;

/** A stack on one end of a link pair and a raw frame endpoint (the "peer") on the other. */
function rig(opts: Parameters<typeof createStack>[0] extends infer O ? Partial<O> : never = {}) {
  const clock = new ManualClock();
  const { a, b } = createLinkPair({ macA: PEER_MAC });
  const received: Uint8Array[] = [];
  a.onFrames((fs) => {
    for (const f of fs) received.push(f.slice());
  });
  const stack = createStack({ link: b, ipv4: '10.0.0.2/24', clock, ...opts });
  return { clock, peer: a, received, stack, ourMac: b.mac };
}

function ipv4Frame(dstMac: Uint8Array, protocol: number, l4: Uint8Array, src = PEER_IP, dst = OUR_IP): Uint8Array {
  const f = new Uint8Array(34 + l4.length);
  emitIpv4(ipv4Repr({ src, dst, protocol, payload: l4 }), f, 14);
  emitEthernet({ dst: dstMac, src: PEER_MAC, etherType: EtherType.IPV4, vlans: [], payload: f.subarray(14) }, f);
  return f;
}

describe('the stack against a raw peer', () => {
  it('answers ARP requests for its address only, and learns the asker', async () => {
    const r = rig();
    const req = (target: number) => {
      const f = new Uint8Array(42);
      emitArp(
        {
          operation: ArpOperation.REQUEST,
          senderMac: PEER_MAC,
          senderIp: PEER_IP,
          targetMac: new Uint8Array(6),
          targetIp: target,
        },
        f,
        14,
      );
      emitEthernet(
        { dst: MAC_BROADCAST, src: PEER_MAC, etherType: EtherType.ARP, vlans: [], payload: f.subarray(14) },
        f,
      );
      return f;
    };
    r.peer.send(req(parseIpv4Address('10.0.0.99')!));
    r.peer.send(req(OUR_IP));
    await turn();
    expect(r.received.length).toBe(1);
    const eth = parseEthernet(r.received[0]!);
    const arp = eth.ok ? parseArp(eth.value.payload) : null;
    expect(arp?.ok && arp.value).toMatchObject({ operation: ArpOperation.REPLY, senderIp: OUR_IP, targetIp: PEER_IP });
    expect(await r.stack.resolve('10.0.0.1')).toEqual(PEER_MAC);
    r.stack.close();
  });

  it('answers ICMP echo with the same identifier, sequence and data', async () => {
    const r = rig();
    const echo = { kind: 'echo-request' as const, ident: 0x4242, seq: 7, data: Uint8Array.from([1, 2, 3, 4, 5]) };
    const l4 = new Uint8Array(icmpv4BufferLength(echo));
    emitIcmpv4(echo, l4);
    r.peer.send(ipv4Frame(r.ourMac, IpProtocol.ICMP, l4));
    await turn();
    expect(r.received.length).toBe(1);
    const eth = parseEthernet(r.received[0]!);
    const ip = eth.ok ? parseIpv4(eth.value.payload) : null;
    expect(ip?.ok && ip.value.dst).toBe(PEER_IP);
    const icmp = ip?.ok ? parseIcmpv4(ip.value.payload) : null;
    expect(icmp?.ok && icmp.value).toEqual({ kind: 'echo-reply', ident: 0x4242, seq: 7, data: echo.data });
    expect(r.stack.stats.icmpEchoAnswered).toBe(1);
    r.stack.close();
  });

  it('delivers UDP datagrams with their source and replies from the bound port', async () => {
    const r = rig();
    const ep = r.stack.bindUdp(7);
    expect(() => r.stack.bindUdp(7)).toThrow(NetError);
    const l4 = new Uint8Array(8 + 5);
    emitUdp({ srcPort: 40000, dstPort: 7, payload: new TextEncoder().encode('hello') }, l4, 0, PEER_IP, OUR_IP);
    r.peer.send(ipv4Frame(r.ourMac, IpProtocol.UDP, l4));
    const d = await ep.receive();
    expect(d).toMatchObject({ srcAddress: PEER_IP, srcText: '10.0.0.1', srcPort: 40000, dstPort: 7 });
    expect(new TextDecoder().decode(d!.data)).toBe('hello');
    expect(ep.reply(d!, d!.data)).toBe(true);
    await turn();
    const eth = parseEthernet(r.received.at(-1)!);
    const ip = eth.ok ? parseIpv4(eth.value.payload) : null;
    const u = ip?.ok ? parseUdp(ip.value.payload, ip.value.src, ip.value.dst) : null;
    expect(u?.ok && u.value.srcPort).toBe(7);
    expect(u?.ok && u.value.dstPort).toBe(40000);
    // Datagrams to unbound ports and with bad checksums are dropped.
    l4[7] ^= 0xff;
    r.peer.send(ipv4Frame(r.ourMac, IpProtocol.UDP, l4));
    await turn();
    ep.close();
    expect(await ep.receive()).toBeUndefined();
    r.stack.close();
  });

  it('sends large UDP datagrams as IPv4 fragments after resolving the peer by ARP', async () => {
    const r = rig();
    const ep = r.stack.bindUdp(5000);
    const data = new Uint8Array(4000).map((_, i) => i & 0xff);
    ep.send(data, '10.0.0.1', 9);
    await turn();
    // First an ARP request: the datagram waits for the answer.
    expect(r.received.length).toBe(1);
    const eth = parseEthernet(r.received[0]!);
    expect(eth.ok && eth.value.etherType).toBe(EtherType.ARP);
    const reply = new Uint8Array(42);
    emitArp(
      { operation: ArpOperation.REPLY, senderMac: PEER_MAC, senderIp: PEER_IP, targetMac: r.ourMac, targetIp: OUR_IP },
      reply,
      14,
    );
    emitEthernet(
      { dst: r.ourMac, src: PEER_MAC, etherType: EtherType.ARP, vlans: [], payload: reply.subarray(14) },
      reply,
    );
    r.peer.send(reply);
    await turn();
    await turn();
    const frags = r.received.slice(1).map((f) => {
      const e = parseEthernet(f);
      const ip = e.ok ? parseIpv4(e.value.payload) : null;
      if (!ip?.ok) throw new Error('not ipv4');
      return ip.value;
    });
    expect(frags.length).toBe(3);
    expect(frags.map((f) => f.moreFragments)).toEqual([true, true, false]);
    r.stack.close();
  });

  it('ARP resolution gives up after its retries with EXO_ERR_NET_ARP_TIMEOUT', async () => {
    const clock = new ManualClock();
    const asked: number[] = [];
    const cache = new ArpCache(
      clock,
      (ip) => asked.push(ip),
      () => {},
      { retries: 3, retryMs: 1000 },
    );
    let err: unknown = null;
    cache.resolve(PEER_IP).catch((e) => {
      err = e;
    });
    clock.advance(2999);
    await turn();
    expect(asked.length).toBe(3);
    expect(err).toBeNull();
    clock.advance(1);
    await turn();
    expect((err as NetError).code).toBe('EXO_ERR_NET_ARP_TIMEOUT');
    // Entries expire after their lifetime.
    cache.learn(PEER_IP, PEER_MAC);
    expect(cache.lookup(PEER_IP)).toEqual(PEER_MAC);
    clock.advance(60_000);
    expect(cache.lookup(PEER_IP)).toBeUndefined();
  });

  it('IPv6: answers neighbour solicitations and ICMPv6 echo on its link-local address', async () => {
    const r = rig({ ipv6: {} });
    const ours = linkLocalFromMac(r.ourMac);
    const peer6 = parseIpv6Address('fe80::1')!;
    const send6 = (dst: Uint8Array, dstMac: Uint8Array, msg: Parameters<typeof emitIcmpv6>[0], hop = 255) => {
      const len = icmpv6BufferLength(msg);
      const f = new Uint8Array(54 + len);
      emitIcmpv6(msg, f, 54, peer6, dst);
      emitIpv6(
        {
          src: peer6,
          dst,
          nextHeader: IpProtocol.ICMPV6,
          hopLimit: hop,
          trafficClass: 0,
          flowLabel: 0,
          payload: f.subarray(54),
        },
        f,
        14,
      );
      emitEthernet({ dst: dstMac, src: PEER_MAC, etherType: EtherType.IPV6, vlans: [], payload: f.subarray(14) }, f);
      r.peer.send(f);
    };
    const snm = solicitedNodeMulticast(ours);
    send6(snm, Uint8Array.of(0x33, 0x33, 0xff, snm[13], snm[14], snm[15]), {
      kind: 'neighbor-solicitation',
      target: ours,
      sourceMac: PEER_MAC,
    });
    send6(ours, r.ourMac, { kind: 'echo-request', ident: 1, seq: 2, data: Uint8Array.of(9, 9) }, 64);
    await turn();
    const msgs = r.received.map((f) => {
      const e = parseEthernet(f);
      const ip = e.ok ? parseIpv6(e.value.payload) : null;
      if (!ip?.ok) throw new Error('not ipv6');
      const m = parseIcmpv6(ip.value.payload, ip.value.src, ip.value.dst);
      if (!m.ok) throw new Error(m.error.message);
      return m.value;
    });
    expect(msgs[0]).toMatchObject({
      kind: 'neighbor-advertisement',
      solicited: true,
      override: true,
      targetMac: r.ourMac,
    });
    expect(msgs[1]).toMatchObject({ kind: 'echo-reply', ident: 1, seq: 2 });
    r.stack.close();
  });

  it('hostile frames never throw and never crash the stack', async () => {
    const r = rig({ ipv6: {} });
    r.stack.bindUdp(7);
    r.stack.tcpListen(80);
    const heads = [
      [0x08, 0x00, 0x45, 0x00],
      [0x08, 0x06, 0x00, 0x01],
      [0x86, 0xdd, 0x60, 0x00],
      [0x81, 0x00, 0x00, 0x01],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...heads), fc.uint8Array({ maxLength: 200 }), fc.boolean(), (h, tail, bcast) => {
        const f = new Uint8Array(12 + h.length + tail.length);
        f.set(bcast ? MAC_BROADCAST : r.ourMac, 0);
        f.set(PEER_MAC, 6);
        f.set(h, 12);
        f.set(tail, 12 + h.length);
        // Make IPv4 headers plausible often enough to reach the transports: fix the checksum-free fields.
        r.stack.handleFrames([f]);
      }),
      { numRuns: 3000 },
    );
    expect(r.stack.stats.internalErrors).toBe(0);
    // Valid-looking TCP to port 80 with random flags and sequence numbers (checksums not verified, so every
    // segment reaches the state machine).
    const t = rig({ tcp: { verifyChecksums: false } });
    t.stack.tcpListen(80);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.nat(),
        fc.nat(),
        fc.uint8Array({ maxLength: 40 }),
        (flags, seq, ack, data) => {
          const l4 = new Uint8Array(20 + data.length);
          l4[1] = 50; // src port 50
          l4[3] = 80;
          l4.set(
            [seq >>> 24, seq >>> 16, seq >>> 8, seq].map((x) => x & 0xff),
            4,
          );
          l4.set(
            [ack >>> 24, ack >>> 16, ack >>> 8, ack].map((x) => x & 0xff),
            8,
          );
          l4[12] = 0x50;
          l4[13] = flags;
          l4[14] = 0xff;
          l4.set(data, 20);
          l4[1] = 50 + (seq % 3); // a few distinct peers, so segments hit established connections too
          t.stack.handleFrames([ipv4Frame(t.ourMac, IpProtocol.TCP, l4)]);
        },
      ),
      { numRuns: 1000, seed: 42 },
    );
    expect(r.stack.stats.rxFrames).toBeGreaterThanOrEqual(3000);
    t.clock.advance(120_000);
    expect(t.stack.stats.internalErrors).toBe(0);
    r.stack.close();
    t.stack.close();
  });
});
