import { describe, expect, it } from 'vitest';
import {
  emitArp,
  emitEthernet,
  emitIcmpv4,
  emitIcmpv6,
  emitIpv4,
  emitIpv6,
  emitTcp,
  emitUdp,
  extractFlowKey,
  FlowKey,
  FlowKeyStatus,
  fragmentIpv4,
  IpProtocol,
  Ipv4Reassembler,
  icmpv4BufferLength,
  icmpv6BufferLength,
  parseArp,
  parseEthernet,
  parseIcmpv4,
  parseIcmpv6,
  parseIpv4,
  parseIpv4Address,
  parseIpv4Options,
  parseIpv6,
  parseTcp,
  parseUdp,
  tcpBufferLength,
  udpBufferLength,
  walkIpv6Extensions,
} from '../src/index.ts';
import { scapyFrames } from './helpers/scapy.ts';

/**
 * Reference frames built by scapy (Linux tooling) with its own checksums. Each is parsed layer by layer with
 * checksums verified, then re-emitted from the representations: the bytes must be identical.
 */
const frames = scapyFrames(`
e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
out["udp4"] = e/IP(src="10.77.0.1", dst="10.77.0.2", id=7, ttl=61)/UDP(sport=5555, dport=7)/b"hello exonet"
out["udp4odd"] = e/IP(src="10.77.0.1", dst="10.77.0.2")/UDP(sport=1, dport=2)/b"odd"
out["tcp4"] = e/IP(src="192.168.1.10", dst="192.168.1.20", flags="DF")/TCP(sport=40000, dport=80, seq=123456789, ack=987654321, flags="SA", window=64240, options=[("MSS",1460),("NOP",None),("WScale",7),("NOP",None),("NOP",None),("SAckOK",b""),("NOP",None),("NOP",None),("Timestamp",(11,22))])
out["tcp4data"] = e/IP(src="192.168.1.10", dst="192.168.1.20")/TCP(sport=80, dport=40000, seq=5, ack=6, flags="PA", window=501)/(b"GET / HTTP/1.1\\r\\n" * 3)
out["icmp4"] = e/IP(src="10.77.0.1", dst="10.77.0.2")/ICMP(type=8, id=0x1234, seq=3)/b"abcdefgh01234567"
out["icmp4unreach"] = e/IP(src="10.77.0.2", dst="10.77.0.1")/ICMP(type=3, code=3)/IP(src="10.77.0.1", dst="10.77.0.2")/UDP(sport=9, dport=99)/b"x"
out["ipopts"] = e/IP(src="1.2.3.4", dst="5.6.7.8", options=[IPOption_RR(routers=["9.9.9.9"]), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()])/UDP(sport=3, dport=4)/b"opts"
out["vlan"] = e/Dot1Q(vlan=42, prio=5)/IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=1000, dport=2000)/b"tagged"
out["qinq"] = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88a8)/Dot1AD(vlan=100)/Dot1Q(vlan=200)/IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=1, dport=2)
out["arp"] = e/ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.77.0.1", pdst="10.77.0.2")
out["udp6"] = e/IPv6(src="fe80::1", dst="2001:db8::2", hlim=255, fl=0x12345, tc=3)/UDP(sport=546, dport=547)/b"six"
out["tcp6"] = e/IPv6(src="2001:db8::1", dst="2001:db8::2")/TCP(sport=1234, dport=443, flags="S", options=[("MSS",1440)])
out["icmp6echo"] = e/IPv6(src="2001:db8::1", dst="2001:db8::2")/ICMPv6EchoRequest(id=77, seq=5, data=b"ping6")
out["ns"] = e/IPv6(src="fe80::1", dst="ff02::1:ff00:2", hlim=255)/ICMPv6ND_NS(tgt="2001:db8::2")/ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01")
out["na"] = e/IPv6(src="2001:db8::2", dst="fe80::1", hlim=255)/ICMPv6ND_NA(tgt="2001:db8::2", R=0, S=1, O=1)/ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:02")
out["ext6"] = e/IPv6(src="2001:db8::1", dst="2001:db8::2")/IPv6ExtHdrHopByHop()/IPv6ExtHdrDestOpt()/IPv6ExtHdrFragment(id=99, m=0, offset=0)/UDP(sport=53, dport=5353)/b"ext"
big = IP(src="10.1.1.1", dst="10.2.2.2", id=4242)/UDP(sport=10, dport=20)/(bytes(range(256)) * 12)
out["big"] = big
for i, f in enumerate(fragment(big, fragsize=1000)):
    out["frag%d" % i] = f
`);

type Layered = { bytes: Uint8Array; reemitted: Uint8Array };

function reemit(frame: Uint8Array): Layered {
  const eth = parseEthernet(frame);
  if (!eth.ok) throw new Error(eth.error.message);
  const e = eth.value;
  let payload: Uint8Array = e.payload;
  if (e.etherType === 0x0806) {
    const a = parseArp(e.payload);
    if (!a.ok) throw new Error(a.error.message);
    payload = new Uint8Array(28);
    emitArp(a.value, payload);
  } else if (e.etherType === 0x0800) {
    const ip = parseIpv4(e.payload);
    if (!ip.ok) throw new Error(ip.error.message);
    const { src, dst } = ip.value;
    let l4: Uint8Array = ip.value.payload;
    if (ip.value.fragmentOffset === 0 && !ip.value.moreFragments) {
      if (ip.value.protocol === IpProtocol.UDP) {
        const u = parseUdp(ip.value.payload, src, dst);
        if (!u.ok) throw new Error(u.error.message);
        l4 = new Uint8Array(udpBufferLength(u.value));
        emitUdp(u.value, l4, 0, src, dst);
      } else if (ip.value.protocol === IpProtocol.TCP) {
        const t = parseTcp(ip.value.payload, src, dst);
        if (!t.ok) throw new Error(t.error.message);
        l4 = new Uint8Array(tcpBufferLength(t.value));
        emitTcp(t.value, l4, 0, src, dst);
      } else if (ip.value.protocol === IpProtocol.ICMP) {
        const c = parseIcmpv4(ip.value.payload);
        if (!c.ok) throw new Error(c.error.message);
        l4 = new Uint8Array(icmpv4BufferLength(c.value));
        emitIcmpv4(c.value, l4);
      }
    }
    payload = new Uint8Array(20 + ip.value.options.length + l4.length);
    emitIpv4({ ...ip.value, payload: l4 }, payload);
  } else if (e.etherType === 0x86dd) {
    const ip = parseIpv6(e.payload);
    if (!ip.ok) throw new Error(ip.error.message);
    const { src, dst } = ip.value;
    const walk = walkIpv6Extensions(ip.value.nextHeader, ip.value.payload);
    if (!walk.ok) throw new Error(walk.error.message);
    const head = ip.value.payload.subarray(0, walk.value.offset);
    const body = ip.value.payload.subarray(walk.value.offset);
    let l4: Uint8Array = body;
    if (walk.value.protocol === IpProtocol.UDP) {
      const u = parseUdp(body, src, dst);
      if (!u.ok) throw new Error(u.error.message);
      l4 = new Uint8Array(udpBufferLength(u.value));
      emitUdp(u.value, l4, 0, src, dst);
    } else if (walk.value.protocol === IpProtocol.TCP) {
      const t = parseTcp(body, src, dst);
      if (!t.ok) throw new Error(t.error.message);
      l4 = new Uint8Array(tcpBufferLength(t.value));
      emitTcp(t.value, l4, 0, src, dst);
    } else if (walk.value.protocol === IpProtocol.ICMPV6) {
      const c = parseIcmpv6(body, src, dst);
      if (!c.ok) throw new Error(c.error.message);
      l4 = new Uint8Array(icmpv6BufferLength(c.value));
      emitIcmpv6(c.value, l4, 0, src, dst);
    }
    payload = new Uint8Array(40 + head.length + l4.length);
    payload.set(head, 40);
    payload.set(l4, 40 + head.length);
    emitIpv6({ ...ip.value, payload: payload.subarray(40) }, payload);
  }
  const out = new Uint8Array(14 + 4 * e.vlans.length + payload.length);
  emitEthernet({ ...e, payload }, out);
  return { bytes: frame, reemitted: out };
}

describe('cross-checked with scapy', () => {
  for (const name of [
    'udp4',
    'udp4odd',
    'tcp4',
    'tcp4data',
    'icmp4',
    'icmp4unreach',
    'ipopts',
    'vlan',
    'qinq',
    'arp',
  ]) {
    it(`${name}: parses with checksums verified and re-emits identically`, () => {
      const { bytes, reemitted } = reemit(frames[name]!);
      expect(Buffer.from(reemitted).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
    });
  }
  for (const name of ['udp6', 'tcp6', 'icmp6echo', 'ns', 'na', 'ext6']) {
    it(`${name}: IPv6 pseudo-header checksums match`, () => {
      const { bytes, reemitted } = reemit(frames[name]!);
      expect(Buffer.from(reemitted).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
    });
  }

  it('reads TCP options, VLAN tags, IPv4 options and NDP fields', () => {
    const tcp = parseEthernet(frames.tcp4!);
    if (!tcp.ok) throw new Error();
    const ip = parseIpv4(tcp.value.payload);
    if (!ip.ok) throw new Error();
    expect(ip.value.dontFragment).toBe(true);
    const seg = parseTcp(ip.value.payload, ip.value.src, ip.value.dst);
    expect(seg.ok && seg.value.options).toEqual({
      mss: 1460,
      windowScale: 7,
      sackPermitted: true,
      timestamp: { value: 11, echo: 22 },
    });
    const q = parseEthernet(frames.qinq!);
    expect(q.ok && q.value.vlans.map((v) => v.vid)).toEqual([100, 200]);
    const v = parseEthernet(frames.vlan!);
    expect(v.ok && v.value.vlans[0]).toMatchObject({ vid: 42, pcp: 5 });
    const o = parseEthernet(frames.ipopts!);
    const oip = o.ok ? parseIpv4(o.value.payload) : null;
    const opts = oip?.ok ? parseIpv4Options(oip.value.options) : null;
    expect(opts?.ok && opts.value[0]?.type).toBe(7);
    const ns = parseEthernet(frames.ns!);
    const nsip = ns.ok ? parseIpv6(ns.value.payload) : null;
    const nsmsg = nsip?.ok ? parseIcmpv6(nsip.value.payload, nsip.value.src, nsip.value.dst) : null;
    expect(nsmsg?.ok && nsmsg.value.kind).toBe('neighbor-solicitation');
  });

  it('walks IPv6 extension headers to UDP and the flow key finds the ports', () => {
    const key = new FlowKey();
    expect(extractFlowKey(frames.ext6!, key)).toBe(FlowKeyStatus.OK);
    expect([key.family, key.protocol, key.srcPort, key.dstPort]).toEqual([6, 17, 53, 5353]);
    expect(extractFlowKey(frames.vlan!, key)).toBe(FlowKeyStatus.OK);
    expect(key.toString()).toBe('17 10.0.0.1:1000 > 10.0.0.2:2000');
    expect(key.vlan).toBe(42);
    expect(extractFlowKey(frames.arp!, key)).toBe(FlowKeyStatus.NOT_IP);
  });

  it("reassembles scapy's fragments, in any order, to the original packet", () => {
    const big = frames.big!;
    const frags = Object.keys(frames)
      .filter((k) => k.startsWith('frag'))
      .map((k) => frames[k]!);
    expect(frags.length).toBeGreaterThan(2);
    const reprs = frags.map((f) => {
      const r = parseIpv4(f);
      if (!r.ok) throw new Error(r.error.message);
      return r.value;
    });
    for (const order of [reprs, [...reprs].reverse(), [reprs[1]!, ...reprs.slice(2), reprs[0]!]]) {
      const re = new Ipv4Reassembler();
      let done = null;
      for (const r of order) done = re.push(r, 0) ?? done;
      expect(done).not.toBeNull();
      const out = new Uint8Array(20 + done!.payload.length);
      emitIpv4(done!, out);
      expect(Buffer.from(out).equals(Buffer.from(big))).toBe(true);
    }
    // Our own fragmentation of the same packet equals scapy's fragments byte for byte.
    const whole = parseIpv4(big);
    if (!whole.ok) throw new Error();
    const ours = fragmentIpv4(whole.value, 1020);
    expect(ours.length).toBe(frags.length);
    ours.forEach((r, i) => {
      const b = new Uint8Array(20 + r.payload.length);
      emitIpv4(r, b);
      expect(Buffer.from(b).toString('hex')).toBe(Buffer.from(frags[i]!).toString('hex'));
    });
  });

  it('drops overlapping fragments and expires stale ones', () => {
    const base = {
      src: parseIpv4Address('1.1.1.1')!,
      dst: parseIpv4Address('2.2.2.2')!,
      protocol: 17,
      ttl: 64,
      dscp: 0,
      ecn: 0,
      ident: 5,
      dontFragment: false,
      options: new Uint8Array(0),
    };
    const re = new Ipv4Reassembler({ timeoutMs: 1000 });
    expect(re.push({ ...base, moreFragments: true, fragmentOffset: 0, payload: new Uint8Array(16) }, 0)).toBeNull();
    expect(re.push({ ...base, moreFragments: false, fragmentOffset: 8, payload: new Uint8Array(16) }, 0)).toBeNull();
    expect(re.pendingCount).toBe(0);
    expect(re.push({ ...base, moreFragments: true, fragmentOffset: 0, payload: new Uint8Array(16) }, 0)).toBeNull();
    expect(re.expire(999)).toBe(0);
    expect(re.expire(1000)).toBe(1);
  });
});
