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

/** Copies a payload: word by word when small (cheaper than a TypedArray.set call), else one memcpy. */
function copyWords(dst: Uint32Array, src: Uint32Array, words: number): void {
  if (words > 32) dst.set(src);
  else for (let i = 0; i < words; i++) dst[i] = src[i];
}

/** Sends `count` messages of `payload` bytes. */
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
  const words = payload >> 2;
  const data = new Uint32Array(words).fill(0x01020304);
  const shift = Math.log2(l.frameSize);
  const descs = new Uint32Array(BATCH * 4);
  let seq = 0;
  while (seq < count) {
    let n = free.dequeueBurst(descs, Math.min(BATCH, count - seq));
    if (n === 0) {
      free.waitReadable();
      continue;
    }
    for (let i = 0; i < n; i++) {
      const d = i * 4;
      data[0] = seq;
      copyWords(views[descs[d] >>> shift], data, words);
      descs[d + 1] = payload;
      descs[d + 2] = seq++;
    }
    // Never full: the ring holds every frame.
    while (n > 0) n -= active.enqueueBurst(descs, n);
  }
}

/** Receives `count` messages, copying each payload out; returns a checksum of the first bytes. */
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
  const words = payload >> 2;
  const out = new Uint32Array(words);
  const shift = Math.log2(l.frameSize);
  const descs = new Uint32Array(BATCH * 4);
  let got = 0;
  let sum = 0;
  while (got < count) {
    let n = active.dequeueBurst(descs, BATCH);
    if (n === 0) {
      active.waitReadable();
      continue;
    }
    for (let i = 0; i < n; i++) {
      copyWords(out, views[descs[i * 4] >>> shift], words);
      sum = (sum + out[0]) | 0;
    }
    got += n;
    while (n > 0) n -= free.enqueueBurst(descs, n);
  }
  return sum;
}
