/**
 * Sequence number arithmetic modulo 2^32 (RFC 9293 section 3.4): comparisons are on the signed difference.
 */

/** a + n modulo 2^32. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
/** The signed distance a - b (valid while |a - b| < 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
/** a < b in sequence space. */
export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}
/** a <= b in sequence space. */
export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}
/** a > b in sequence space. */
export function seqGt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}
/** a >= b in sequence space. */
export function seqGe(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}
/** The larger of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return seqGt(a, b) ? a : b;
}
