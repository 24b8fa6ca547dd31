/*
 * Internal byte helpers shared by the views (never re-exported). Reads past the end of a Uint8Array yield
 * `undefined`, which the bit operators turn into 0, so no accessor throws on short input: the views report
 * truncation through their `check()` instead.
 */

/** Big-endian u16 at `off`. */
export function get16(b: Uint8Array, off: number): number {
  return ((b[off] << 8) | b[off + 1]) & 0xffff;
}

/** Big-endian u32 at `off` (unsigned). */
export function get32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** Writes a big-endian u16 at `off`. */
export function set16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

/** Writes a big-endian u32 at `off`. */
export function set32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** A subarray that never throws and is clamped to the buffer. */
export function slice(b: Uint8Array, start: number, end: number = b.length): Uint8Array {
  const s = Math.min(Math.max(start, 0), b.length);
  return b.subarray(s, Math.max(s, Math.min(end, b.length)));
}

/** Copies `src` into `dst` at `off` unless it already lives there (zero-copy emit of in-place payloads). */
export function place(dst: Uint8Array, off: number, src: Uint8Array): void {
  if (src.buffer === dst.buffer && src.byteOffset === dst.byteOffset + off) return;
  dst.set(src, off);
}

/** Fails loudly on a caller bug (emit into a buffer too small); parse paths never call this. */
export function requireRoom(buf: Uint8Array, off: number, need: number, what: string): void {
  if (off < 0 || off + need > buf.length) {
    throw new RangeError(`${what}: expected a buffer of at least ${off + need} bytes, got length=${buf.length}`);
  }
}
