import { describe, expect, it } from 'vitest';
import {
  emitIpv4,
  emitTcp,
  emitUdp,
  formatIpv6,
  fragmentIpv4,
  ipv4Repr,
  parseIpv4Address,
  parseIpv4Cidr,
  parseIpv6Address,
  parseMac,
} from '../src/index.ts';

describe('address text', () => {
  it.each(['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.-4', 'a.b.c.d', ' 1.2.3.4'])('rejects IPv4 %j', (t) => {
    expect(parseIpv4Address(t)).toBeNull();
  });
  it.each(['', ':::', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7'])('rejects IPv6 %j', (t) => {
    expect(parseIpv6Address(t)).toBeNull();
  });
  it.each(['', '00:11:22:33:44', '00:11:22:33:44:gg', '001122334455'])('rejects MAC %j', (t) => {
    expect(parseMac(t)).toBeNull();
  });
  it('rejects prefixes out of range', () => {
    expect(parseIpv4Cidr('10.0.0.1/33')).toBeNull();
    expect(parseIpv4Cidr('10.0.0.1/x')).toBeNull();
    expect(parseIpv4Cidr('10.0.0.1/24')).toEqual({ address: 0x0a000001, prefixLength: 24 });
  });
  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
  ])('formats %s as %s (RFC 5952)', (input, out) => {
    expect(formatIpv6(parseIpv6Address(input)!)).toBe(out);
  });
});

describe('emit refuses caller bugs with RangeError naming the problem', () => {
  const base = ipv4Repr({ src: 1, dst: 2, protocol: 17, payload: new Uint8Array(10) });
  it.each([
    ['a too-small buffer', base, 20, /at least 30 bytes, got length=20/],
    ['options over 40 bytes', { ...base, options: new Uint8Array(44) }, 100, /40 bytes/],
    ['a fragment offset not a multiple of 8', { ...base, fragmentOffset: 12 }, 100, /multiple of 8/],
    ['a packet over 65535 bytes', { ...base, payload: new Uint8Array(65_530) }, 70_000, /65535/],
  ])('emitIpv4: %s', (_n, repr, size, msg) => {
    expect(() => emitIpv4(repr, new Uint8Array(size))).toThrow(msg);
  });
  it('emitUdp and emitTcp', () => {
    expect(() =>
      emitUdp({ srcPort: 1, dstPort: 2, payload: new Uint8Array(65_530) }, new Uint8Array(70_000), 0, 1, 2),
    ).toThrow(RangeError);
    const tooMany = {
      srcPort: 1,
      dstPort: 2,
      seq: 0,
      ack: 0,
      flags: 2,
      window: 0,
      urgent: 0,
      options: {
        mss: 1460,
        timestamp: { value: 1, echo: 2 },
        sackBlocks: [1, 2, 3, 4].map((i) => ({ left: i, right: i + 1 })),
      },
      payload: new Uint8Array(0),
    };
    expect(() => emitTcp(tooMany, new Uint8Array(100), 0, 1, 2)).toThrow(/at most 40 bytes/);
  });
  it('fragmentIpv4 refuses DF packets over the MTU', () => {
    expect(() => fragmentIpv4({ ...base, dontFragment: true, payload: new Uint8Array(2000) }, 1500)).toThrow(/DF/);
  });
});
