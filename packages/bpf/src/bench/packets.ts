/**
 * Deterministic packet sets for the differential tests and the benchmark: Ethernet, 802.1Q/QinQ VLAN, ARP,
 * RARP, IPv4 (with options, fragments), IPv6 (with an extension header), TCP, UDP, ICMP, ICMPv6, plus
 * truncated captures and garbage. Internal to the package.
 * @module
 */

/** A captured frame: the bytes captured and the original length on the wire. */
export interface Frame {
  readonly data: Uint8Array;
  readonly wirelen: number;
}

/** A small, fast, seeded PRNG (mulberry32), so every run builds the same packets. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const be16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
const be32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const ip4 = (s: string): number[] => s.split('.').map(Number);

/** Addresses the filters in tests and benchmark talk about, so that many packets match something. */
export const HOSTS4 = [
  '10.0.0.1',
  '10.0.0.2',
  '192.168.1.1',
  '192.168.1.77',
  '8.8.8.8',
  '255.255.255.255',
  '224.0.0.1',
];
export const HOSTS6 = [
  [0xfe80, 0, 0, 0, 0, 0, 0, 1],
  [0x2001, 0xdb8, 0, 0, 0, 0, 0, 2],
  [0xff02, 0, 0, 0, 0, 0, 0, 1],
];
export const MACS = [
  [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
  [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
];
export const PORTS = [20, 22, 53, 80, 443, 1024, 8080, 65535];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function transport(r: () => number, proto: number): number[] {
  const sport = r() < 0.8 ? pick(r, PORTS) : Math.floor(r() * 65536);
  const dport = r() < 0.8 ? pick(r, PORTS) : Math.floor(r() * 65536);
  const payload = Array.from({ length: Math.floor(r() * 24) }, () => Math.floor(r() * 256));
  if (proto === 6) {
    const flags = r() < 0.5 ? pick(r, [0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0xc2]) : Math.floor(r() * 256);
    return [
      ...be16(sport),
      ...be16(dport),
      ...be32(Math.floor(r() * 2 ** 32)),
      ...be32(0),
      0x50,
      flags,
      ...be16(512),
      0,
      0,
      0,
      0,
      ...payload,
    ];
  }
  if (proto === 17) return [...be16(sport), ...be16(dport), ...be16(8 + payload.length), 0, 0, ...payload];
  if (proto === 1 || proto === 58) {
    const type = pick(r, proto === 1 ? [0, 3, 8, 11, 13] : [1, 128, 129, 133, 135, 136]);
    return [type, Math.floor(r() * 4), 0, 0, ...be32(Math.floor(r() * 2 ** 32)), ...payload];
  }
  return payload;
}

function ipv4(r: () => number): number[] {
  const proto = pick(r, [6, 6, 17, 17, 1, 2, 47, 132]);
  const optWords = r() < 0.2 ? 1 + Math.floor(r() * 3) : 0;
  const fragRoll = r();
  // Mostly unfragmented; some first fragments (MF), some later fragments (offset != 0), some DF.
  const frag = fragRoll < 0.75 ? 0 : fragRoll < 0.85 ? 0x2000 : fragRoll < 0.95 ? 0x2000 | 0x0010 : 0x4000;
  const body = transport(r, proto);
  const src = r() < 0.9 ? ip4(pick(r, HOSTS4)) : [10, 0, Math.floor(r() * 256), Math.floor(r() * 256)];
  const dst = r() < 0.9 ? ip4(pick(r, HOSTS4)) : [192, 168, Math.floor(r() * 256), Math.floor(r() * 256)];
  const opts = Array.from({ length: optWords * 4 }, (_, i) => (i === optWords * 4 - 1 ? 0 : 1));
  const total = 20 + opts.length + body.length;
  return [0x45 + optWords, 0, ...be16(total), 0, 1, ...be16(frag), 64, proto, 0, 0, ...src, ...dst, ...opts, ...body];
}

function ipv6(r: () => number): number[] {
  const next = pick(r, [6, 6, 17, 17, 58, 0, 44]);
  let body = transport(r, next);
  const src = pick(r, HOSTS6).flatMap(be16);
  const dst = pick(r, HOSTS6).flatMap(be16);
  if (next === 0 || next === 44) {
    // An extension header in front of a transport header: ip6 proto N must not see through it.
    const inner = pick(r, [6, 17, 58]);
    body = [inner, 0, 0, 0, 0, 0, 0, 0, ...transport(r, inner)];
  }
  const hdr = [0x60, 0, 0, 0, ...be16(body.length), next, 64, ...src, ...dst];
  return [...hdr, ...body];
}

function arp(r: () => number): number[] {
  return [
    0,
    1,
    8,
    0,
    6,
    4,
    0,
    r() < 0.5 ? 1 : 2,
    ...pick(r, MACS),
    ...ip4(pick(r, HOSTS4)),
    ...pick(r, MACS),
    ...ip4(pick(r, HOSTS4)),
  ];
}

/** One random frame (before truncation). */
export function randomFrame(r: () => number): number[] {
  const dst = r() < 0.9 ? pick(r, MACS) : Array.from({ length: 6 }, () => Math.floor(r() * 256));
  const src = pick(r, MACS);
  const kind = r();
  let ethertype: number;
  let payload: number[];
  if (kind < 0.4) [ethertype, payload] = [0x0800, ipv4(r)];
  else if (kind < 0.65) [ethertype, payload] = [0x86dd, ipv6(r)];
  else if (kind < 0.75) [ethertype, payload] = [0x0806, arp(r)];
  else if (kind < 0.78) [ethertype, payload] = [0x8035, arp(r)];
  else if (kind < 0.83) [ethertype, payload] = [pick(r, [0x88cc, 0x8863, 0x05dc, 0x0026]), transport(r, 0)];
  else {
    // 802.1Q, 802.1ad or QinQ: the inner frame is IPv4 or IPv6 or ARP.
    const tags = r() < 0.7 ? 1 : 2;
    const inner = r();
    const [innerType, innerPayload] =
      inner < 0.5 ? [0x0800, ipv4(r)] : inner < 0.85 ? [0x86dd, ipv6(r)] : [0x0806, arp(r)];
    const tagBytes: number[] = [];
    for (let t = 0; t < tags; t++) {
      const tpid = t === 0 ? pick(r, [0x8100, 0x88a8, 0x9100]) : 0x8100;
      tagBytes.push(...be16(tpid), ...be16(pick(r, [1, 10, 100, 4095, 0]) | (Math.floor(r() * 8) << 13)));
    }
    // The type field at offset 12 is the first TPID; the last tag is followed by the inner ethertype.
    return [...dst, ...src, ...tagBytes, ...be16(innerType), ...innerPayload];
  }
  return [...dst, ...src, ...be16(ethertype), ...payload];
}

/**
 * A deterministic mixed packet set: mostly well-formed frames, some truncated captures (buflen < wirelen,
 * cut anywhere), some garbage, an empty capture and a 64 KiB one.
 */
export function packetSet(count: number, seed = 1): Frame[] {
  const r = prng(seed);
  const out: Frame[] = [];
  for (let i = 0; i < count; i++) {
    const roll = r();
    if (roll < 0.05) {
      const n = Math.floor(r() * 80);
      out.push({ data: Uint8Array.from({ length: n }, () => Math.floor(r() * 256)), wirelen: n + Math.floor(r() * 4) });
      continue;
    }
    const frame = randomFrame(r);
    if (roll < 0.25) {
      const cut = Math.floor(r() * frame.length);
      out.push({ data: Uint8Array.from(frame.slice(0, cut)), wirelen: frame.length });
    } else {
      out.push({ data: Uint8Array.from(frame), wirelen: frame.length });
    }
  }
  if (count >= 8) {
    out.push({ data: new Uint8Array(0), wirelen: 0 });
    const big = new Uint8Array(65536);
    big.set(Uint8Array.from(randomFrame(r)));
    out.push({ data: big, wirelen: 65536 });
  }
  return out;
}
