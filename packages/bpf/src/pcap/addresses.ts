/**
 * Address literals of the filter language: dotted IPv4 (possibly partial), IPv6, Ethernet.
 * @module
 */

/** Parses 1 to 4 dotted decimal parts; returns the value (parts packed big-endian) and its bit length. */
export function parseDotted(text: string): { value: number; bits: number } | undefined {
  const parts = text.split('.');
  if (parts.length < 1 || parts.length > 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return { value: value >>> 0, bits: parts.length * 8 };
}

/** Parses an IPv6 address into four 32-bit words, or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  let head = text;
  const tailWords: number[] = [];
  // An embedded IPv4 address in the last 32 bits.
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const d = parseDotted(v4[2]!);
    if (d?.bits !== 32) return undefined;
    head = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
    tailWords.push(d.value >>> 16, d.value & 0xffff);
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const group = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const left = group(halves[0]!);
  const right = halves.length === 2 ? group(halves[1]!) : [];
  if (!left || !right) return undefined;
  right.push(...tailWords);
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = [...left, ...right];
    if (groups.length !== 8) return undefined;
  }
  const words: number[] = [];
  for (let i = 0; i < 4; i++) words.push(((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0);
  return words;
}

/** Parses aa:bb:cc:dd:ee:ff, aa-bb-..., or aabb.ccdd.eeff into six bytes. */
export function parseMac(text: string): number[] | undefined {
  let hex: string[];
  if (/^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$/.test(text)) {
    const flat = text.replace(/\./g, '');
    hex = flat.match(/../g)!;
  } else {
    hex = text.split(/[:-]/);
    if (hex.length !== 6 || hex.some((h) => !/^[0-9A-Fa-f]{1,2}$/.test(h))) return undefined;
  }
  return hex.map((h) => Number.parseInt(h, 16));
}

/** The four words of an IPv6 prefix mask of `len` bits. */
export function ipv6Mask(len: number): number[] {
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    words.push(bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);
  }
  return words;
}
