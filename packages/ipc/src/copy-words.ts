/**
 * The word copy of the packet path, shared by the channel's receive fast path and the driver core (staging
 * and small-frame copies): `TypedArray.set` needs a source view of exactly the words to copy, and making one
 * allocates, so short copies go word by word over views made once.
 * @module
 */

/**
 * Copies `n` 32-bit words from `from[fromWord, fromWord + n)` to `to[toWord, toWord + n)`. Four words a
 * step: for a 64-byte frame the loop's own cost (a bound check and a branch per word) is most of the copy.
 * The ranges must not overlap; callers have checked both bounds.
 */
export function copyWords(to: Int32Array, toWord: number, from: Int32Array, fromWord: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    to[toWord + i] = from[fromWord + i];
    to[toWord + i + 1] = from[fromWord + i + 1];
    to[toWord + i + 2] = from[fromWord + i + 2];
    to[toWord + i + 3] = from[fromWord + i + 3];
  }
  for (; i < n; i++) to[toWord + i] = from[fromWord + i];
}

/** Int32 views over whole buffers, made once per buffer. */
const views = new WeakMap<ArrayBufferLike, Int32Array<ArrayBufferLike>>();

/**
 * An Int32Array over the whole of `buffer` from byte 0 (its last `byteLength % 4` bytes left out), made once
 * per buffer and kept while the buffer lives: the source or destination view {@link copyWords} needs for
 * frames that arrive as byte views.
 */
export function wordViewOf(buffer: ArrayBufferLike): Int32Array<ArrayBufferLike> {
  let v = views.get(buffer);
  if (v === undefined) {
    v = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    views.set(buffer, v);
  }
  return v;
}
