import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ArpRepr,
  arpBufferLength,
  type EthernetRepr,
  emitArp,
  emitEthernet,
  emitIcmpv4,
  emitIcmpv6,
  emitIpv4,
  emitIpv6,
  emitTcp,
  emitUdp,
  ethernetBufferLength,
  type Icmpv4Repr,
  type Icmpv6Repr,
  type Ipv4Repr,
  type Ipv6Repr,
  icmpv4BufferLength,
  icmpv6BufferLength,
  ipv4BufferLength,
  ipv6BufferLength,
  parseArp,
  parseEthernet,
  parseIcmpv4,
  parseIcmpv6,
  parseIpv4,
  parseIpv6,
  parseTcp,
  parseUdp,
  type TcpRepr,
  tcpBufferLength,
  type UdpRepr,
  udpBufferLength,
} from '../src/index.ts';

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });
const ip6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const bytes = (max: number) => fc.uint8Array({ maxLength: max });

/** Compares reprs structurally with Uint8Arrays by content. */
function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

function roundtrip<T>(
  arb: fc.Arbitrary<T>,
  len: (r: T) => number,
  emit: (r: T, buf: Uint8Array) => number,
  parse: (buf: Uint8Array) => { ok: boolean; value?: T; error?: unknown },
): void {
  fc.assert(
    fc.property(arb, (repr) => {
      const buf = new Uint8Array(len(repr));
      expect(emit(repr, buf)).toBe(buf.length);
      const r = parse(buf);
      expect(r.error).toBeUndefined();
      expect(norm(r.value)).toEqual(norm(repr));
    }),
    { numRuns: 300 },
  );
}

const ethernet: fc.Arbitrary<EthernetRepr> = fc.record({
  dst: mac,
  src: mac,
  etherType: fc.integer({ min: 0x0600, max: 0xffff }).filter((t) => t !== 0x8100 && t !== 0x88a8),
  vlans: fc.array(
    fc.record({
      tpid: fc.constantFrom(0x8100, 0x88a8),
      pcp: fc.integer({ min: 0, max: 7 }),
      dei: fc.boolean(),
      vid: fc.integer({ min: 0, max: 4095 }),
    }),
    { maxLength: 3 },
  ),
  payload: bytes(100),
});

const ipv4: fc.Arbitrary<Ipv4Repr> = fc.record({
  src: u32,
  dst: u32,
  protocol: u8,
  ttl: u8,
  dscp: fc.integer({ min: 0, max: 63 }),
  ecn: fc.integer({ min: 0, max: 3 }),
  ident: u16,
  dontFragment: fc.boolean(),
  moreFragments: fc.boolean(),
  fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((x) => x * 8),
  // Well-formed options: NOP padding or a record-route style option of a valid length, padded to 4 bytes.
  options: fc
    .array(
      fc.oneof(
        fc.constant([1]),
        fc.uint8Array({ minLength: 1, maxLength: 6 }).map((d) => [7, d.length + 2, ...d]),
      ),
      {
        maxLength: 4,
      },
    )
    .map((parts) => {
      const flat = parts.flat();
      const out = new Uint8Array((flat.length + 3) & ~3);
      out.set(flat.slice(0, 40));
      return out.subarray(0, Math.min(out.length, 40));
    })
    .filter((o) => {
      // keep only option strings that still walk cleanly after truncation to 40 bytes
      let i = 0;
      while (i < o.length) {
        if (o[i] === 0) return true;
        if (o[i] === 1) {
          i++;
          continue;
        }
        if (i + 1 >= o.length || o[i + 1] < 2 || i + o[i + 1] > o.length) return false;
        i += o[i + 1];
      }
      return true;
    }),
  payload: bytes(200),
});

const ipv6: fc.Arbitrary<Ipv6Repr> = fc.record({
  src: ip6,
  dst: ip6,
  nextHeader: u8,
  hopLimit: u8,
  trafficClass: u8,
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
  payload: bytes(200),
});

const arp: fc.Arbitrary<ArpRepr> = fc.record({
  operation: fc.constantFrom(1, 2),
  senderMac: mac,
  senderIp: u32,
  targetMac: mac,
  targetIp: u32,
});

const udp: fc.Arbitrary<UdpRepr> = fc.record({ srcPort: u16, dstPort: u16, payload: bytes(300) });

const tcp: fc.Arbitrary<TcpRepr> = fc.record({
  srcPort: u16,
  dstPort: u16,
  seq: u32,
  ack: u32,
  flags: u8,
  window: u16,
  urgent: u16,
  options: fc.record(
    {
      mss: u16,
      windowScale: fc.integer({ min: 0, max: 14 }),
      sackPermitted: fc.constant(true),
      timestamp: fc.record({ value: u32, echo: u32 }),
      sackBlocks: fc.array(fc.record({ left: u32, right: u32 }), { minLength: 1, maxLength: 1 }),
    },
    { requiredKeys: [] },
  ),
  payload: bytes(300),
});

const quoted = bytes(60);
const icmpv4: fc.Arbitrary<Icmpv4Repr> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const),
    ident: u16,
    seq: u16,
    data: bytes(100),
  }),
  fc.record({ kind: fc.constant('dest-unreachable' as const), code: fc.constant(4), nextHopMtu: u16, quoted }),
  fc.record({
    kind: fc.constant('dest-unreachable' as const),
    code: fc.constantFrom(0, 1, 3, 13),
    nextHopMtu: fc.constant(0),
    quoted,
  }),
  fc.record({ kind: fc.constant('time-exceeded' as const), code: fc.constantFrom(0, 1), quoted }),
  fc.record({ kind: fc.constant('parameter-problem' as const), code: fc.constantFrom(0, 1), pointer: u8, quoted }),
  fc.record({
    kind: fc.constant('other' as const),
    type: fc.constantFrom(5, 13, 14, 42),
    code: u8,
    rest: u32,
    data: bytes(30),
  }),
);

const icmpv6: fc.Arbitrary<Icmpv6Repr> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const),
    ident: u16,
    seq: u16,
    data: bytes(100),
  }),
  fc.record({ kind: fc.constantFrom('dest-unreachable' as const, 'time-exceeded' as const), code: u8, quoted }),
  fc.record({ kind: fc.constant('packet-too-big' as const), mtu: u32, quoted }),
  fc.record({ kind: fc.constant('parameter-problem' as const), code: u8, pointer: u32, quoted }),
  fc.record(
    { kind: fc.constant('neighbor-solicitation' as const), target: ip6, sourceMac: mac },
    { requiredKeys: ['kind', 'target'] },
  ),
  fc.record(
    {
      kind: fc.constant('neighbor-advertisement' as const),
      router: fc.boolean(),
      solicited: fc.boolean(),
      override: fc.boolean(),
      target: ip6,
      targetMac: mac,
    },
    { requiredKeys: ['kind', 'router', 'solicited', 'override', 'target'] },
  ),
);

describe('emit then parse returns the same representation', () => {
  it('ethernet with VLAN tags', () =>
    roundtrip(ethernet, ethernetBufferLength, (r, b) => emitEthernet(r, b), parseEthernet));
  it('arp', () => roundtrip(arp, arpBufferLength, (r, b) => emitArp(r, b), parseArp));
  it('ipv4 with options and fragment fields', () =>
    roundtrip(ipv4, ipv4BufferLength, (r, b) => emitIpv4(r, b), parseIpv4));
  it('ipv6', () => roundtrip(ipv6, ipv6BufferLength, (r, b) => emitIpv6(r, b), parseIpv6));
  it('udp over ipv4 and ipv6 pseudo-headers', () => {
    roundtrip(
      udp,
      udpBufferLength,
      (r, b) => emitUdp(r, b, 0, 0x0a000001, 0x0a000002),
      (b) => parseUdp(b, 0x0a000001, 0x0a000002),
    );
    const a = new Uint8Array(16).fill(1);
    const c = new Uint8Array(16).fill(2);
    roundtrip(
      udp,
      udpBufferLength,
      (r, b) => emitUdp(r, b, 0, a, c),
      (b) => parseUdp(b, a, c),
    );
  });
  it('tcp with options', () =>
    roundtrip(
      tcp,
      tcpBufferLength,
      (r, b) => emitTcp(r, b, 0, 0xc0a80001, 0x7f000001),
      (b) => parseTcp(b, 0xc0a80001, 0x7f000001),
    ));
  it('icmpv4', () => roundtrip(icmpv4, icmpv4BufferLength, (r, b) => emitIcmpv4(r, b), parseIcmpv4));
  it('icmpv6', () => {
    const a = new Uint8Array(16).fill(0xfe);
    const c = new Uint8Array(16).fill(0x20);
    roundtrip(
      icmpv6,
      icmpv6BufferLength,
      (r, b) => emitIcmpv6(r, b, 0, a, c),
      (b) => parseIcmpv6(b, a, c),
    );
  });
  it('a corrupted checksum is reported, not thrown', () => {
    fc.assert(
      fc.property(udp, fc.nat(), (r, at) => {
        const b = new Uint8Array(udpBufferLength(r));
        emitUdp(r, b, 0, 1, 2);
        const i = at % b.length;
        if (i === 4 || i === 5) return; // the length field changes structure, not just the checksum
        b[i] ^= 0x5a;
        if (b[6] === 0 && b[7] === 0) return; // a zero checksum means "none" over IPv4
        const p = parseUdp(b, 1, 2);
        expect(p.ok).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
