import type { Doorbell } from '../doorbell.ts';
import { alignUp, Descriptor, ringBytes } from '../layout.ts';
import { PacketPool } from '../pool.ts';
import { initRing, RingConsumer, RingProducer } from '../ring.ts';

/**
 * The benchmark's data path: an sDDF-style pair of rings over a frame pool. The producer takes free frames,
 * copies the payloads in, sends their descriptors on `active`; the consumer copies the payloads out and gives
 * the frames back on `free`. Everything moves in batches: one bulk copy (one `TypedArray.set` per contiguous
 * run) of the descriptors and one of the payloads per side, one publish, no allocation. The frames start on
 * the free ring in pool order and both rings are FIFO, so the frames of a batch are consecutive in the pool
 * and their payloads one block: no per-message copy call, yet every message still has its own frame and
 * descriptor (which the consumer checks against the payload).
 */
export interface RingPairLayout {
  readonly frames: number;
  readonly frameSize: number;
  readonly activeAt: number;
  readonly freeAt: number;
  readonly poolAt: number;
  readonly size: number;
}

export function ringPairLayout(frames: number, frameSize: number): RingPairLayout {
  const ring = ringBytes(frames, Descriptor.SIZE);
  const poolAt = alignUp(2 * ring, 4096);
  return { frames, frameSize, activeAt: 0, freeAt: ring, poolAt, size: poolAt + frames * frameSize };
}

/** Initialises both rings and puts every frame on the free ring. */
export function initRingPair(buffer: ArrayBufferLike, l: RingPairLayout): void {
  initRing(buffer, l.activeAt, l.frames);
  initRing(buffer, l.freeAt, l.frames);
  const free = new RingProducer({ buffer, byteOffset: l.freeAt, capacity: l.frames });
  for (let i = 0; i < l.frames; i++) free.push(i * l.frameSize, 0, 0, 0);
  free.publish();
}

/**
 * Messages per batch: one bulk copy of descriptors, one of payloads (per contiguous run of frames), and one
 * publish per side per batch. Large batches amortise the calls and the cache-line hand-over of the indices.
 */
export const BATCH = 1024;
/**
 * Frames in the pool and slots in each ring: 64 batches (4 MiB of 64-byte frames). A deep ring is what keeps
 * both sides busy on a shared machine: a side that is descheduled or waking up (tens of microseconds) finds
 * work queued or room left rather than a peer that stopped too, and sleeps and wake-ups stay rare (measured:
 * 1,024 frames in batches of 256 slept in a third of the batches and ran at half the rate; 65,536 frames in
 * batches of 1,024 sleep in a few percent of them).
 */
export const FRAMES = 64 * BATCH;
/**
 * Polls before sleeping. Busy-polling pays on idle dedicated cores; on a shared, oversubscribed machine it
 * steals the peer's time slice, so the benchmark sleeps at once (the need-wakeup flag keeps that cheap).
 */
export const SPIN = 0;

/** A frame size for `payload`-byte messages: the smallest power of two >= 64 that holds one. */
export function frameSizeFor(payload: number): number {
  let size = 64;
  while (size < payload) size *= 2;
  return size;
}

/** One view of the first `payload` bytes of each frame and of each staging slot, made once: no allocation later. */
function payloadViews(bytes: Uint8Array, count: number, stride: number, payload: number): Uint8Array[] {
  const views: Uint8Array[] = [];
  for (let i = 0; i < count; i++) views.push(bytes.subarray(i * stride, i * stride + payload));
  return views;
}

/**
 * Messages staged at a time: the private staging area (8 KiB of 64-byte messages) stays in the L1 cache while
 * it is filled and copied, instead of a whole batch's worth spilling to L2 between the two.
 */
export const CHUNK = 128;

/**
 * The descriptors of one batch, and a private staging area for a chunk of its messages, laid out like the
 * frames (one frame size apart) so that a run of consecutive frames is copied in or out with one memcpy.
 */
class Batch {
  readonly descriptors: Uint32Array;
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  /** Words from one message's staging slot to the next. */
  readonly strideWords: number;
  private readonly slotViews: Uint8Array[];
  private readonly frameViews: Uint8Array[];

  constructor(
    readonly pool: PacketPool,
    readonly size: number,
    readonly chunk: number,
    readonly payload: number,
  ) {
    this.descriptors = new Uint32Array(size * Descriptor.WORDS);
    this.bytes = new Uint8Array(chunk * pool.frameSize);
    this.words = new Uint32Array(this.bytes.buffer);
    this.strideWords = pool.frameSize >> 2;
    this.slotViews = payloadViews(this.bytes, chunk, pool.frameSize, payload);
    this.frameViews = payloadViews(pool.bytes, pool.frameCount, pool.frameSize, payload);
  }

  /**
   * Copies the `n` staged messages into the frames of descriptors `first ..`: a message that fills its frame
   * is copied with its neighbours, one memcpy per run of consecutive frames; a smaller one alone (a frame's
   * slack is not worth copying).
   */
  copyIn(first: number, n: number): void {
    this.#move(first, n, true);
  }

  /** Copies the payloads of descriptors `first .. first + n - 1` out into the staging area. */
  copyOut(first: number, n: number): void {
    this.#move(first, n, false);
  }

  /** Both directions of the copy between the staging area and the frames (`inward`: into the frames). */
  #move(first: number, n: number, inward: boolean): void {
    const { pool, descriptors: d } = this;
    const frameSize = pool.frameSize;
    if (this.payload === frameSize) {
      for (let i = 0; i < n; ) {
        const run = pool.runLength(d, first + i, n - i);
        const offset = d[(first + i) * Descriptor.WORDS];
        if (inward) pool.writeRun(offset, this.bytes, i * frameSize, run * frameSize);
        else pool.readRun(offset, this.bytes, i * frameSize, run * frameSize);
        i += run;
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      const frame = pool.indexOf(d[(first + i) * Descriptor.WORDS]);
      if (frame < 0) throw new Error(`bad frame offset ${d[(first + i) * Descriptor.WORDS]}`);
      if (inward) this.frameViews[frame].set(this.slotViews[i]);
      else this.slotViews[i].set(this.frameViews[frame]);
    }
  }
}

/**
 * Sends `count` messages of `payload` bytes, `batch` at a time: takes that many free frames off the free ring
 * (one bulk copy of their descriptors), writes each message (its sequence number in the first word) in a
 * private staging area, copies the payloads into the frames, and sends the descriptors (offset, length,
 * tag = sequence number) on the active ring with one bulk copy and one publish.
 */
export function runProducer(
  buffer: ArrayBufferLike,
  l: RingPairLayout,
  doorbell: Doorbell,
  count: number,
  payload: number,
  batch = BATCH,
): number {
  const active = new RingProducer({ buffer, byteOffset: l.activeAt, capacity: l.frames, doorbell, spin: SPIN });
  const free = new RingConsumer({ buffer, byteOffset: l.freeAt, capacity: l.frames, doorbell, spin: SPIN });
  const chunk = Math.min(CHUNK, batch);
  const b = new Batch(new PacketPool(buffer, l.poolAt, l.frameSize, l.frames), batch, chunk, payload);
  const { descriptors: d, words, strideWords } = b;
  b.bytes.fill(7);
  let seq = 0;
  let waits = 0;
  while (seq < count) {
    const n = Math.min(batch, count - seq);
    if (!free.dequeueBulk(d, n)) {
      free.waitReadable(n);
      waits++;
      continue;
    }
    for (let c = 0; c < n; c += chunk) {
      const m = Math.min(chunk, n - c);
      for (let i = 0, w = c * Descriptor.WORDS, p = 0; i < m; i++, w += Descriptor.WORDS, p += strideWords) {
        const tag = seq + c + i;
        words[p] = tag;
        d[w + Descriptor.LENGTH] = payload;
        d[w + Descriptor.TAG] = tag;
        d[w + Descriptor.STATUS] = 0;
      }
      b.copyIn(c, m);
    }
    // Never full: the ring holds every frame.
    active.enqueueBulk(d, n);
    seq += n;
  }
  return waits;
}

/**
 * Receives `count` messages, `batch` at a time: one bulk copy of the descriptors off the active ring, the
 * payloads copied out of their frames, every message checked (its descriptor's length and tag against its
 * payload's sequence number), the frames handed back on the free ring with one bulk copy. Returns the sum of
 * the sequence numbers read from the payloads, and how many messages did not match their descriptor.
 */
export function runConsumer(
  buffer: ArrayBufferLike,
  l: RingPairLayout,
  doorbell: Doorbell,
  count: number,
  payload: number,
  batch = BATCH,
): { sum: number; bad: number; waits: number } {
  const active = new RingConsumer({ buffer, byteOffset: l.activeAt, capacity: l.frames, doorbell, spin: SPIN });
  const free = new RingProducer({ buffer, byteOffset: l.freeAt, capacity: l.frames, doorbell, spin: SPIN });
  const chunk = Math.min(CHUNK, batch);
  const b = new Batch(new PacketPool(buffer, l.poolAt, l.frameSize, l.frames), batch, chunk, payload);
  const { descriptors: d, words, strideWords } = b;
  let got = 0;
  let sum = 0;
  let bad = 0;
  let waits = 0;
  while (got < count) {
    const n = Math.min(batch, count - got);
    if (!active.dequeueBulk(d, n)) {
      active.waitReadable(n);
      waits++;
      continue;
    }
    for (let c = 0; c < n; c += chunk) {
      const m = Math.min(chunk, n - c);
      b.copyOut(c, m);
      for (let i = 0, w = c * Descriptor.WORDS, p = 0; i < m; i++, w += Descriptor.WORDS, p += strideWords) {
        const seq = words[p];
        sum = (sum + seq) | 0;
        if (d[w + Descriptor.TAG] !== seq || d[w + Descriptor.LENGTH] !== payload) bad++;
      }
    }
    // The active slots were released by the bulk dequeue, before the frames go back: never full.
    free.enqueueBulk(d, n);
    got += n;
  }
  return { sum, bad, waits };
}
