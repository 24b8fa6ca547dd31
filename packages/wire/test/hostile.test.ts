import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArpPacket,
  EthernetFrame,
  extractFlowKey,
  FlowKey,
  IcmpPacket,
  Ipv4Packet,
  Ipv4Reassembler,
  Ipv6Packet,
  parseArp,
  parseEthernet,
  parseIcmpv4,
  parseIcmpv6,
  parseIpv4,
  parseIpv4Options,
  parseIpv6,
  parseTcp,
  parseTcpOptions,
  parseUdp,
  TcpPacket,
  UdpPacket,
  walkIpv6Extensions,
} from '../src/index.ts';

const a6 = new Uint8Array(16);

/** Reads every getter of a view: none may throw on any input. */
function touch(view: object): void {
  const proto = Object.getPrototypeOf(view);
  for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
    if (d.get) (view as Record<string, unknown>)[name];
    else if (name === 'check') (view as { check(): unknown }).check();
  }
}

describe('hostile bytes never throw', () => {
  it('parsers, views and the flow-key extractor report instead of throwing', () => {
    const key = new FlowKey();
    const reasm = new Ipv4Reassembler();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (b, v) => {
        const opts = { verifyChecksum: v };
        for (const r of [
          parseEthernet(b),
          parseArp(b),
          parseIpv4(b, opts),
          parseIpv6(b),
          parseUdp(b, 1, 2, opts),
          parseUdp(b, a6, a6, opts),
          parseTcp(b, 1, 2, opts),
          parseIcmpv4(b, opts),
          parseIcmpv6(b, a6, a6, opts),
          parseTcpOptions(b),
          parseIpv4Options(b),
          walkIpv6Extensions(b[0] ?? 0, b.subarray(1)),
        ]) {
          expect(typeof r.ok).toBe('boolean');
          if (!r.ok) expect(r.error.code).toMatch(/^EXO_ERR_WIRE_/);
        }
        for (const view of [b, b.subarray(0, 3)].flatMap((x) => [
          new EthernetFrame(x),
          new ArpPacket(x),
          new Ipv4Packet(x),
          new Ipv6Packet(x),
          new UdpPacket(x),
          new TcpPacket(x),
          new IcmpPacket(x),
        ])) {
          touch(view);
        }
        extractFlowKey(b, key);
        const ip = parseIpv4(b, { verifyChecksum: false });
        if (ip.ok) reasm.push(ip.value, 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('frames that look like Ethernet/IP with random tails never throw', () => {
    const key = new FlowKey();
    const headers = [
      [0x08, 0x00, 0x45],
      [0x08, 0x00, 0x46],
      [0x86, 0xdd, 0x60],
      [0x81, 0x00, 0, 5, 0x08, 0x00, 0x45],
      [0x08, 0x06, 0, 1],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...headers), fc.uint8Array({ maxLength: 100 }), (h, tail) => {
        const f = new Uint8Array([...new Array(12).fill(2), ...h, ...tail]);
        const e = parseEthernet(f);
        if (e.ok) {
          parseIpv4(e.value.payload);
          const v6 = parseIpv6(e.value.payload);
          if (v6.ok) walkIpv6Extensions(v6.value.nextHeader, v6.value.payload);
          parseArp(e.value.payload);
        }
        expect(typeof extractFlowKey(f, key)).toBe('number');
      }),
      { numRuns: 3000 },
    );
  });
});
