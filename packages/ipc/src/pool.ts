import { check } from './errors.ts';
import { isPowerOfTwo } from './layout.ts';

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
}
