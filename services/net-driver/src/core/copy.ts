/**
 * Frame copies on the packet path, without allocating. `TypedArray.set` needs a source view of exactly the
 * bytes to copy, and making one (`subarray`) allocates; for the small frames that dominate packet rates a
 * word loop over views made once is faster and allocates nothing. Large frames use `set`, whose memcpy wins
 * beyond a few hundred bytes (one small allocation per large frame).
 */
import { copyWords, wordViewOf } from '@exonet/ipc';

/** Frames up to this length are copied word by word. */
const WORD_COPY_MAX = 256;

/**
 * Copies `length` bytes from `src[0, length)` to `dst[dstOffset, dstOffset + length)`. When both are
 * 4-byte aligned and the frame is small, it copies whole words and may write up to 3 bytes past `length`
 * (inside the destination frame): callers pass `dstRoom >= length + 3` for that case.
 */
export function copyFrame(src: Uint8Array, length: number, dst: Uint8Array, dstOffset: number, dstRoom: number): void {
  const s = src.byteOffset;
  const d = dst.byteOffset + dstOffset;
  if (length <= WORD_COPY_MAX && ((s | d) & 3) === 0 && dstRoom >= length + 3 && src.length >= length + 3) {
    copyWords(wordViewOf(dst.buffer), d >>> 2, wordViewOf(src.buffer), s >>> 2, (length + 3) >>> 2);
    return;
  }
  dst.set(length === src.length ? src : src.subarray(0, length), dstOffset);
}
