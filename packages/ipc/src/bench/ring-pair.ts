import type { Doorbell } from '../doorbell.ts';
import { alignUp, Descriptor, ringBytes } from '../layout.ts';
import { initRing, RingConsumer, RingProducer } from '../ring.ts';

/**
 * The benchmark's data path: an sDDF-style pair of rings over a frame pool. The producer takes a free frame,
 * copies the payload in, sends its descriptor on `active`; the consumer copies the payload out and gives the
 * frame back on `free`. Batches of up to 32, one publish per batch, no allocation per message.
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

const BATCH = 32;
/**
 * Polls before sleeping. Busy-polling pays on idle dedicated cores; on a shared, oversubscribed machine it
 * steals the peer's time slice, so the benchmark sleeps at once (the need-wakeup flag keeps that cheap).
 */
export const SPIN = 0;

/** One view per frame, made once, so the copy loop allocates nothing. */
function frameViews(buffer: ArrayBufferLike, l: RingPairLayout, payload: number): Uint32Array[] {
  const views: Uint32Array[] = [];
  for (let i = 0; i < l.frames; i++) views.push(new Uint32Array(buffer, l.poolAt + i * l.frameSize, payload >> 2));
  return views;
}

/** Copies a payload into the frame at word `at` of the pool: word by word when small, else one memcpy. */
function copyIn(pool: Uint32Array, at: number, view: Uint32Array, src: Uint32Array, words: number): void {
  if (words > 32) view.set(src);
  else for (let i = 0; i < words; i++) pool[at + i] = src[i];
}

/** Copies a payload out of the frame at word `at` of the pool. */
function copyOut(dst: Uint32Array, pool: Uint32Array, at: number, view: Uint32Array, words: number): void {
  if (words > 32) dst.set(view);
  else for (let i = 0; i < words; i++) dst[i] = pool[at + i];
}

/**
 * Sends `count` messages of `payload` bytes. Descriptors are read and written in place in the ring slots
 * (peek/reserve), so per message the only copies are the payload and the descriptor words themselves.
 */
export function runProducer(
  buffer: ArrayBufferLike,
  l: RingPairLayout,
  doorbell: Doorbell,
  count: number,
  payload: number,
): void {
  const active = new RingProducer({ buffer, byteOffset: l.activeAt, capacity: l.frames, doorbell, spin: SPIN });
  const free = new RingConsumer({ buffer, byteOffset: l.freeAt, capacity: l.frames, doorbell, spin: SPIN });
  const views = frameViews(buffer, l, payload);
  const pool = new Uint32Array(buffer, 0, l.size >> 2);
  const words = payload >> 2;
  const data = new Uint32Array(words).fill(0x01020304);
  const shift = Math.log2(l.frameSize);
  const freeSlots = free.slots;
  const activeSlots = active.slots;
  let seq = 0;
  while (seq < count) {
    let n = 0;
    for (; n < BATCH && seq < count; n++, seq++) {
      const f = free.peek();
      if (f < 0) break;
      const offset = freeSlots[f];
      data[0] = seq;
      copyIn(pool, (l.poolAt + offset) >>> 2, views[offset >>> shift], data, words);
      // Never full: the ring holds every frame.
      const a = active.reserve();
      activeSlots[a] = offset;
      activeSlots[a + 1] = payload;
      activeSlots[a + 2] = seq;
      activeSlots[a + 3] = 0;
    }
    free.release();
    active.publish();
    if (n === 0) free.waitReadable();
  }
}

/** Receives `count` messages, copying each payload out; returns a checksum of the first words. */
export function runConsumer(
  buffer: ArrayBufferLike,
  l: RingPairLayout,
  doorbell: Doorbell,
  count: number,
  payload: number,
): number {
  const active = new RingConsumer({ buffer, byteOffset: l.activeAt, capacity: l.frames, doorbell, spin: SPIN });
  const free = new RingProducer({ buffer, byteOffset: l.freeAt, capacity: l.frames, doorbell, spin: SPIN });
  const views = frameViews(buffer, l, payload);
  const pool = new Uint32Array(buffer, 0, l.size >> 2);
  const words = payload >> 2;
  const out = new Uint32Array(words);
  const shift = Math.log2(l.frameSize);
  const freeSlots = free.slots;
  const activeSlots = active.slots;
  let got = 0;
  let sum = 0;
  while (got < count) {
    let n = 0;
    for (; n < BATCH; n++) {
      const a = active.peek();
      if (a < 0) break;
      const offset = activeSlots[a];
      copyOut(out, pool, (l.poolAt + offset) >>> 2, views[offset >>> shift], words);
      sum = (sum + out[0]) | 0;
      const f = free.reserve();
      freeSlots[f] = offset;
    }
    got += n;
    // Release before publish: the frame handed back must find its old slot free.
    active.release();
    free.publish();
    if (n === 0) active.waitReadable();
  }
  return sum;
}
