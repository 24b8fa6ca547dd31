/**
 * The Internet checksum (RFC 1071) and the pseudo-header sums of IPv4 (RFC 768, RFC 793 section 3.1) and IPv6
 * (RFC 8200 section 8.1).
 */
import type { IpAddress } from './address.ts';

/**
 * Adds the bytes of `data[start, end)` as big-endian 16-bit words to `sum` (an odd trailing byte is padded
 * with zero, RFC 1071 section 1). Returns the unfolded sum: fold with {@link foldChecksum}.
 */
export function sumBytes(data: Uint8Array, start = 0, end = data.length, sum = 0): number {
  end = Math.min(end, data.length);
  let i = start;
  // Sums stay far below 2^53 for any frame size, so plain number arithmetic is exact; fold only at the end.
  for (; i + 1 < end; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i < end) sum += data[i] << 8;
  return sum;
}

/** Folds a running sum to 16 bits with end-around carry. */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The Internet checksum of `data[start, end)`: the ones' complement of the folded sum. */
export function internetChecksum(data: Uint8Array, start = 0, end = data.length, initial = 0): number {
  return ~foldChecksum(sumBytes(data, start, end, initial)) & 0xffff;
}

/**
 * The unfolded sum of the pseudo-header for an upper-layer checksum: source, destination, protocol (next header)
 * and upper-layer length. IPv4 addresses are numbers, IPv6 addresses 16 bytes.
 */
export function pseudoHeaderSum(src: IpAddress, dst: IpAddress, protocol: number, length: number): number {
  let sum = protocol + (length & 0xffff) + Math.floor(length / 0x10000);
  if (typeof src === 'number' && typeof dst === 'number') {
    sum += (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
  } else if (typeof src !== 'number' && typeof dst !== 'number') {
    sum = sumBytes(src, 0, 16, sumBytes(dst, 0, 16, sum));
  } else {
    throw new TypeError('pseudoHeaderSum: expected both addresses of the same family');
  }
  return sum;
}

/**
 * Checksum of an upper-layer segment (`data[start, end)`) with its pseudo-header. The checksum field inside the
 * segment must be zero when computing, or left in place when verifying (then a correct segment yields 0).
 */
export function upperLayerChecksum(
  src: IpAddress,
  dst: IpAddress,
  protocol: number,
  data: Uint8Array,
  start = 0,
  end = data.length,
): number {
  return internetChecksum(data, start, end, pseudoHeaderSum(src, dst, protocol, end - start));
}
