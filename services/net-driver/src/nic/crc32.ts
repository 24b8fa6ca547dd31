/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), used for the Ethernet FCS the model appends and
 * for the multicast hash filter.
 * @module
 */

const TABLE = (() => {
  const t = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  // Slicing-by-4 tables: the FCS is computed for every received frame, so it must be cheap.
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let s = 1; s < 4; s++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[s * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * Runs the CRC register over `data[start, end)` starting from `crc` without the final inversion
 * (Linux's crc32_le).
 */
export function crc32Raw(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  const t = TABLE;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    crc ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    crc = t[768 + (crc & 0xff)] ^ t[512 + ((crc >>> 8) & 0xff)] ^ t[256 + ((crc >>> 16) & 0xff)] ^ t[crc >>> 24];
  }
  for (; i < end; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return crc;
}

/** The standard CRC-32 of `data[start, end)` (as zlib computes it), unsigned. */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  return ~crc32Raw(-1, data, start, end) >>> 0;
}

function bitReverse32(x: number): number {
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  return ((x >>> 16) | (x << 16)) >>> 0;
}

/**
 * Index (0..63) of a multicast address's bit in MAR0..7. r8169's rtl_set_rx_mode uses
 * `ether_crc(ETH_ALEN, addr) >> 26`, where ether_crc is bitrev32(crc32_le(~0, addr)) with no final inversion.
 */
export function multicastHashBit(mac: Uint8Array, offset = 0): number {
  return bitReverse32(crc32Raw(-1, mac, offset, offset + 6)) >>> 26;
}
