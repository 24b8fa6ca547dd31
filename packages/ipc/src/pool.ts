import { check, IpcError } from './errors.ts';
import { Descriptor, isPowerOfTwo } from './layout.ts';
import { ViewCache } from './views.ts';

/**
 * The packet memory of a channel (like AF_XDP's UMEM): `frameCount` frames of `frameSize` bytes. Descriptors
 * name a frame by its byte offset from the start of the pool. Each side views the same memory; who may
 * touch a frame at a given moment is decided by the descriptors, and on the driver side by its ownership
 * table (see DriverChannel), never by anything in this memory.
 */
export class PacketPool {
  /** Bytes per frame, a power of two. */
  readonly frameSize: number;
  /** Number of frames. */
  readonly frameCount: number;
  /** The whole pool. */
  readonly bytes: Uint8Array;
  private readonly shift: number;
  private readonly size: number;
  private readonly views: (Uint8Array | undefined)[];
  private readonly runViews: ViewCache<Uint8Array>;

  constructor(buffer: ArrayBufferLike, byteOffset: number, frameSize: number, frameCount: number) {
    check(isPowerOfTwo(frameSize) && frameSize >= 64, `frameSize: expected a power of two >= 64, got ${frameSize}`);
    check(
      Number.isInteger(frameCount) && frameCount >= 1 && frameCount * frameSize <= 2 ** 31,
      `frameCount: expected an integer >= 1 with frameCount * frameSize <= 2^31, got ${frameCount}`,
    );
    this.frameSize = frameSize;
    this.frameCount = frameCount;
    this.size = frameSize * frameCount;
    this.bytes = new Uint8Array(buffer, byteOffset, this.size);
    this.shift = Math.log2(frameSize);
    this.runViews = new ViewCache(16, this.bytes, frameSize);
    this.views = new Array(frameCount).fill(undefined);
  }

  /** The frame index an untrusted offset names, or -1 if it is out of range or not at a frame start. */
  indexOf(offset: number): number {
    // `offset` comes from a u32 array, so it is an integer in [0, 2^32).
    if (offset >= this.size || (offset & (this.frameSize - 1)) !== 0) return -1;
    return offset >>> this.shift;
  }

  /** Byte offset (in the pool) of frame `index`. */
  offsetOf(index: number): number {
    return index << this.shift;
  }

  /** A view of the whole frame at `offset` (a valid frame offset); created once per frame, then reused. */
  frame(offset: number): Uint8Array {
    const index = offset >>> this.shift;
    let view = this.views[index];
    if (!view) {
      view = this.bytes.subarray(offset, offset + this.frameSize);
      this.views[index] = view;
    }
    return view;
  }

  /**
   * How many of the `count` descriptors in `descriptors` (4 words each, from descriptor `first`) name frames
   * that follow each other in the pool, starting with descriptor `first`: the frames of such a run are one
   * contiguous block of `run * frameSize` bytes, copied with one {@link writeRun} or {@link readRun}. Frames
   * handed out in pool order and returned in the order received (FIFO free and active rings) stay in runs.
   */
  runLength(descriptors: Uint32Array, first: number, count: number): number {
    let at = first * Descriptor.WORDS;
    let next = descriptors[at] + this.frameSize;
    let n = 1;
    for (at += Descriptor.WORDS; n < count && descriptors[at] === next; n++, at += Descriptor.WORDS) {
      next += this.frameSize;
    }
    return n;
  }

  /**
   * Copies `bytes` bytes from `src` (from byte `srcByte`) into the pool at byte `offset` with one memcpy:
   * a run of consecutive frames in one call. Throws `EXO_ERR_IPC_INVALID_ARGUMENT` if either range is out of
   * bounds. Allocates nothing when called again with the same ranges (the views are cached).
   */
  writeRun(offset: number, src: Uint8Array, srcByte: number, bytes: number): void {
    this.checkRun(offset, bytes, src, srcByte);
    this.bytes.set(this.runViews.get(src, srcByte, bytes), offset);
  }

  /** Copies `bytes` bytes of the pool from byte `offset` into `dst` at byte `dstByte` with one memcpy. */
  readRun(offset: number, dst: Uint8Array, dstByte: number, bytes: number): void {
    this.checkRun(offset, bytes, dst, dstByte);
    dst.set(this.runViews.get(this.bytes, offset, bytes), dstByte);
  }

  private checkRun(offset: number, bytes: number, other: Uint8Array, at: number): void {
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(bytes) ||
      !Number.isInteger(at) ||
      offset < 0 ||
      bytes < 0 ||
      at < 0 ||
      offset + bytes > this.size ||
      at + bytes > other.length
    ) {
      throw new IpcError(
        'EXO_ERR_IPC_INVALID_ARGUMENT',
        `run of ${bytes} bytes: pool offset ${offset} (pool ${this.size} bytes), array offset ${at} (array ${other.length} bytes) out of range`,
      );
    }
  }
}
