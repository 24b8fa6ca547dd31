/**
 * `mpls [label]`, `pppoes [session]` and `llc`, alone and followed by the primitives they shift, against
 * libpcap's own compilation on frames that carry those encapsulations (label stacks with and without the
 * bottom-of-stack bit, PPPoE sessions with PPP protocols, 802.3 frames, VLAN outside them), whole and cut.
 */
import { describe, expect, it } from 'vitest';
import { pcapCompile, pcapFilter } from '../src/bench/libpcap-harness.ts';
import { type Frame, packetSet, prng } from '../src/bench/packets.ts';
import { BpfError, compileExpression, interpret, type LinkLayer } from '../src/index.ts';

const EXPRS = [
  'mpls',
  'mpls 100',
  'mpls and ip',
  'mpls and ip6',
  'mpls and udp port 53',
  'mpls and tcp',
  'mpls 100 and mpls 200',
  'mpls and mpls and ip',
  'mpls and mpls 7 and udp',
  'vlan and mpls and ip',
  'vlan 5 and mpls 100 and host 10.0.0.1',
  'mpls and host 10.0.0.1',
  'mpls and net 10.0.0.0/8',
  'mpls and ip[9] = 17',
  'mpls and ether[0] & 1 = 0',
  'mpls and llc',
  'not mpls',
  'mpls or ip',
  'pppoes',
  'pppoes 5',
  'pppoes and ip',
  'pppoes 5 and udp',
  'pppoes and ip6',
  'pppoes and tcp port 80',
  'pppoes and arp',
  'pppoes and ether proto 100',
  'pppoes and mpls',
  'pppoes and mpls and ip',
  'pppoes and pppoes and ip',
  'vlan 10 and pppoes and tcp port 80',
  'pppoes and ip multicast',
  'pppoes and ip6 net 2001:db8::/32',
  'pppoes and host 10.0.0.1',
  'pppoes and icmp',
  'llc',
  'vlan and llc',
  'not llc',
  'llc and ether[14] = 0xaa',
];

const ETH = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/** Frames carrying the encapsulations, built around the IP packets of the usual packet set. */
function encapsulated(): Frame[] {
  const r = prng(99);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const ips = packetSet(400, 5)
    .filter((f) => f.data.length >= 34 && ((f.data[12] === 0x08 && f.data[13] === 0) || f.data[12] === 0x86))
    .map((f) => f.data.subarray(14));
  const out: Frame[] = [];
  const push = (bytes: number[]) => {
    out.push({ data: Uint8Array.from(bytes), wirelen: bytes.length });
    // The same frame cut short somewhere in its headers or payload.
    const cut = Math.floor(r() * bytes.length);
    out.push({ data: Uint8Array.from(bytes.slice(0, cut)), wirelen: bytes.length });
  };
  const label = (value: number, bottom: boolean) => [
    (value >>> 12) & 0xff,
    (value >>> 4) & 0xff,
    ((value & 0xf) << 4) | (bottom ? 1 : 0),
    64,
  ];
  const vlanTag = (id: number, type: number) => [0x81, 0x00, (id >> 8) & 0x0f, id & 0xff, type >> 8, type & 0xff];
  for (const ip of ips) {
    const labels = pick([100, 200, 7, 5000, 0xfffff]);
    // MPLS: one label, two labels, a stack with no bottom, under a VLAN tag.
    push([...ETH, 0x88, 0x47, ...label(labels, true), ...ip]);
    push([...ETH, 0x88, 0x47, ...label(100, false), ...label(pick([200, 7]), true), ...ip]);
    push([...ETH, 0x88, 0x47, ...label(labels, false), ...ip]);
    push([...ETH.slice(0, 12), ...vlanTag(pick([5, 10]), 0x8847), ...label(100, true), ...ip]);
    // PPPoE session: ver/type 0x11, code 0, session, length, then the PPP protocol.
    const ppp = ip[0]! >> 4 === 4 ? 0x0021 : 0x0057;
    const session = pick([5, 6, 0x1234]);
    const pppoe = (proto: number) => [
      0x11,
      0,
      session >> 8,
      session & 0xff,
      0,
      ip.length + 2,
      proto >> 8,
      proto & 0xff,
    ];
    push([...ETH, 0x88, 0x64, ...pppoe(ppp), ...ip]);
    push([...ETH, 0x88, 0x64, ...pppoe(pick([0x0281, 0x8864, 0x0806, 100, 0x0021])), ...ip]);
    push([...ETH.slice(0, 12), ...vlanTag(10, 0x8864), ...pppoe(ppp), ...ip]);
    push([...ETH, 0x88, 0x64, ...pppoe(0x0281), ...label(100, true), ...ip]);
    // 802.3 with LLC: a length, then DSAP/SSAP (NetWare's raw 802.3 has 0xffff).
    const dsap = pick([
      [0xaa, 0xaa, 0x03],
      [0xff, 0xff, 0x00],
      [0x42, 0x42, 0x03],
    ]);
    push([...ETH, 0x00, ip.length + 3, ...dsap, ...ip]);
    push([...ETH.slice(0, 12), ...vlanTag(5, ip.length + 3), ...dsap, ...ip]);
  }
  return out;
}

const frames = [...encapsulated(), ...packetSet(200, 17)];

describe('mpls, pppoes and llc against libpcap', () => {
  const theirs = pcapCompile(EXPRS, { optimize: false });

  it('compiles what libpcap compiles and returns its value on every frame, cut ones included', () => {
    let accepted = 0;
    EXPRS.forEach((e, i) => {
      const t = theirs[i]!;
      if ('error' in t) throw new Error(`${e}: libpcap refuses it (${t.error})`);
      const ours = compileExpression(e);
      const values = pcapFilter([t.program], frames)[0]!;
      frames.forEach((f, j) => {
        const v = interpret(ours, f.data, f.wirelen, f.data.length);
        if (v !== values[j]) {
          throw new Error(
            `"${e}" frame ${j} (${Buffer.from(f.data).toString('hex')}): ours ${v}, libpcap ${values[j]}`,
          );
        }
        if (v !== 0) accepted++;
      });
    });
    expect(accepted).toBeGreaterThan(EXPRS.length * 20);
  });

  it.each([
    ['mpls and arp', 'ethernet', 'unsupported protocol over mpls'],
    ['mpls and vlan', 'ethernet', 'no VLAN match after MPLS'],
    ['mpls and pppoes', 'ethernet', 'unsupported protocol over mpls'],
    ['pppoes and vlan', 'ethernet', 'no VLAN support for PPP'],
    ['pppoes and llc', 'ethernet', "'llc' not supported for PPP"],
    ['pppoes and ether host 1:2:3:4:5:6', 'ethernet', 'ethernet addresses supported only on'],
    ['mpls 1048576', 'ethernet', 'MPLS label 1048576 greater than maximum 1048575'],
    ['pppoes 70000', 'ethernet', 'PPPoE session number 70000 greater than maximum 65535'],
    ['mpls', 'linux-sll', 'no MPLS support for Linux cooked v1'],
    ['llc', 'raw', "'llc' not supported for Raw IP"],
  ] as const)('refuses "%s" (%s) as libpcap does: %s', (expr, link, message) => {
    const dlt = { ethernet: 1, 'linux-sll': 113, raw: 12 }[link];
    const t = pcapCompile([expr], { dlt })[0]!;
    expect('error' in t && t.error).toContain(message);
    expect(() => compileExpression(expr, { link: link as LinkLayer })).toThrow(BpfError);
    expect(() => compileExpression(expr, { link: link as LinkLayer })).toThrow(message);
  });

  it('says plainly that LLC frame-type subtypes are not supported', () => {
    expect(() => compileExpression('llc i')).toThrow(/'llc i' \(an LLC frame type\) is not supported/);
  });
});
