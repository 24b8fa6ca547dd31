/**
 * Address types and their text forms. IPv4 addresses are unsigned 32-bit numbers (cheap to compare and hash on
 * hot paths); MAC and IPv6 addresses are byte arrays of length 6 and 16.
 */

/** A 48-bit Ethernet address (6 bytes). */
export type MacAddress = Uint8Array;
/** An IPv4 address as an unsigned 32-bit number (network order: 10.0.0.1 is 0x0a000001). */
export type Ipv4Address = number;
/** An IPv6 address (16 bytes). */
export type Ipv6Address = Uint8Array;
/** Either kind of IP address; a number is IPv4, 16 bytes are IPv6. */
export type IpAddress = Ipv4Address | Ipv6Address;

/** ff:ff:ff:ff:ff:ff. */
export const MAC_BROADCAST: MacAddress = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
/** 00:00:00:00:00:00. */
export const MAC_ZERO: MacAddress = new Uint8Array(6);

/** Formats a MAC address as lower-case colon-separated hex. */
export function formatMac(mac: MacAddress): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push((mac[i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with dashes); returns null when malformed. */
export function parseMac(text: string): MacAddress | null {
  const m =
    /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (!m) return null;
  return Uint8Array.from(m.slice(1, 7).map((h) => Number.parseInt(h, 16)));
}

/** True when two MAC addresses are equal. */
export function macEquals(a: MacAddress, b: MacAddress): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True for group (multicast or broadcast) MAC addresses: the I/G bit of the first octet (IEEE 802). */
export function isMulticastMac(mac: MacAddress): boolean {
  return (mac[0] & 1) === 1;
}

/** Formats an IPv4 address in dotted-quad form. */
export function formatIpv4(addr: Ipv4Address): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Parses a dotted-quad IPv4 address; returns null when malformed. */
export function parseIpv4(text: string): Ipv4Address | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return null;
    v = v * 256 + o;
  }
  return v >>> 0;
}

/** Parses "a.b.c.d/len" into an address and prefix length; returns null when malformed. */
export function parseIpv4Cidr(text: string): { address: Ipv4Address; prefixLength: number } | null {
  const [a, p] = text.split('/');
  const address = parseIpv4(a ?? '');
  const prefixLength = p === undefined ? 32 : Number(p);
  if (address === null || !Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) return null;
  return { address, prefixLength };
}

/** The network mask for a prefix length (0..32) as an unsigned number. */
export function ipv4Mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Formats an IPv6 address per RFC 5952 (lower case, longest zero run compressed). */
export function formatIpv6(addr: Ipv6Address): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((addr[i] ?? 0) << 8) | (addr[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 1; // RFC 5952 section 4.2.2: a single zero word is not compressed
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses an IPv6 address (with "::" compression, no zone, no embedded IPv4); returns null when malformed. */
export function parseIpv6(text: string): Ipv6Address | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseWords = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const p of s.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(p)) return null;
      out.push(Number.parseInt(p, 16));
    }
    return out;
  };
  const head = parseWords(halves[0] ?? '');
  const tail = halves.length === 2 ? parseWords(halves[1] ?? '') : [];
  if (!head || !tail) return null;
  if (halves.length === 1 && head.length !== 8) return null;
  if (halves.length === 2 && head.length + tail.length > 7) return null;
  const words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** True when two IPv6 addresses are equal. */
export function ipv6Equals(a: Ipv6Address, b: Ipv6Address): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The solicited-node multicast address ff02::1:ffXX:XXXX for an IPv6 address (RFC 4291 section 2.7.1). */
export function solicitedNodeMulticast(addr: Ipv6Address): Ipv6Address {
  const out = parseIpv6('ff02::1:ff00:0')!;
  out[13] = addr[13];
  out[14] = addr[14];
  out[15] = addr[15];
  return out;
}

/** The Ethernet address an IPv6 multicast address maps to: 33:33 and its low 32 bits (RFC 2464 section 7). */
export function ipv6MulticastMac(addr: Ipv6Address): MacAddress {
  return Uint8Array.of(0x33, 0x33, addr[12], addr[13], addr[14], addr[15]);
}

/** The modified EUI-64 link-local address fe80::/64 for a MAC (RFC 4291 appendix A). */
export function linkLocalFromMac(mac: MacAddress): Ipv6Address {
  const out = new Uint8Array(16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = mac[0] ^ 0x02;
  out[9] = mac[1];
  out[10] = mac[2];
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = mac[3];
  out[14] = mac[4];
  out[15] = mac[5];
  return out;
}
