import { atomicsDoorbell, type Doorbell } from './doorbell.ts';
import { check, IpcError } from './errors.ts';
import { CACHE_LINE, Descriptor, isPowerOfTwo, LAYOUT_VERSION, RING_MAGIC, RingHeader, ringBytes } from './layout.ts';
import { ViewCache } from './views.ts';

// Word indices of the header fields (the header is viewed as 64 u32/i32 words).
const W_MAGIC = RingHeader.MAGIC >> 2;
const W_VERSION_SLOT = RingHeader.VERSION >> 2;
const W_CAPACITY = RingHeader.CAPACITY >> 2;
const W_RING_ID = RingHeader.RING_ID >> 2;
const W_PRODUCER = RingHeader.PRODUCER >> 2;
const W_CONSUMER = RingHeader.CONSUMER >> 2;
const W_CONSUMER_WAITING = RingHeader.CONSUMER_WAITING >> 2;
const W_PRODUCER_WAITING = RingHeader.PRODUCER_WAITING >> 2;
const W_CONSUMER_BELL = RingHeader.CONSUMER_BELL >> 2;
const W_PRODUCER_BELL = RingHeader.PRODUCER_BELL >> 2;

/**
 * Runs of at least this many words are copied with one `TypedArray.set` (a memcpy) per contiguous segment;
 * shorter ones word by word, where the loop costs less than the call.
 */
const SET_MIN_WORDS = 64;

/** Throws unless `array[at, at + words)` exists: a short array would otherwise be read as zeros or cut short. */
function checkRange(array: Uint32Array, at: number, words: number, name: string): void {
  if (!(Number.isInteger(at) && at >= 0 && at + words <= array.length)) {
    throw new IpcError(
      'EXO_ERR_IPC_INVALID_ARGUMENT',
      `${name}: expected ${words} words from word ${at}, but the array holds ${array.length}`,
    );
  }
}

/** A 32-bit wake-up counter in shared memory that one side sleeps on and its peers increment and notify. */
export interface Bell {
  readonly words: Int32Array;
  readonly index: number;
}

/**
 * The waiter's half of the wake-up protocol (docs/ipc-layout.md), for one or several rings at once: read the
 * bell, `arm` (store 1 in each need-wakeup flag), check again, and only then sleep while the bell still holds
 * the value read first. A peer publishes its index before it reads the flag, and bumps the bell before it
 * notifies; all are sequentially consistent atomics, so either the peer sees our flag and bumps the bell
 * (our sleep then returns at once or is woken), or our second check sees its index. `done` is checked after
 * arming for the same reason, so a close that bumps the bell is never missed either.
 */
export function sleepUntil(
  doorbell: Doorbell,
  bell: Bell,
  done: () => boolean,
  arm: () => void,
  disarm: () => void,
  timeoutMs = Number.POSITIVE_INFINITY,
): boolean {
  const deadline = timeoutMs === Number.POSITIVE_INFINITY ? timeoutMs : Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (bell.words.length === 0) return false;
    const seq = Atomics.load(bell.words, bell.index);
    arm();
    if (done()) {
      disarm();
      return true;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      disarm();
      return false;
    }
    doorbell.wait(bell.words, bell.index, seq, left);
    // The memory was unmapped while we slept (the channel closed): nothing left to disarm or check.
    if (bell.words.length === 0) return false;
    disarm();
  }
}

/** {@link sleepUntil} without blocking the event loop. */
export async function sleepUntilAsync(
  doorbell: Doorbell,
  bell: Bell,
  done: () => boolean,
  arm: () => void,
  disarm: () => void,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  const deadline = timeoutMs === Number.POSITIVE_INFINITY ? timeoutMs : Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (bell.words.length === 0) return false;
    const seq = Atomics.load(bell.words, bell.index);
    arm();
    if (done()) {
      disarm();
      return true;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      disarm();
      return false;
    }
    await doorbell.waitAsync(bell.words, bell.index, seq, left);
    // The memory was unmapped while we slept (the channel closed): nothing left to disarm or check.
    if (bell.words.length === 0) return false;
    disarm();
  }
}

/** Rings a bell: one more wake-up, and every sleeper on it woken. */
export function ring(doorbell: Doorbell, bell: Bell): void {
  Atomics.add(bell.words, bell.index, 1);
  doorbell.notify(bell.words, bell.index);
}

/** Where a ring lives and what shape it has; the capacity given here is the one the handle trusts. */
export interface RingOptions {
  /** The shared region: a SharedArrayBuffer between threads, a mapped POSIX shared memory ArrayBuffer between processes. */
  readonly buffer: ArrayBufferLike;
  /** Offset of the ring header in `buffer`, a multiple of 64. Default 0. */
  readonly byteOffset?: number;
  /** Number of slots, a power of two. Kept in the handle: the copy in shared memory is never trusted. */
  readonly capacity: number;
  /** Bytes per slot, a multiple of 16. Default 16 (one {@link Descriptor}). */
  readonly slotSize?: number;
  /** How to sleep and wake. Default: Atomics (threads sharing a SharedArrayBuffer). */
  readonly doorbell?: Doorbell;
  /** Polls this many times before sleeping in the blocking and async waits (busy-poll mode). Default 0. */
  readonly spin?: number;
  /** The bell the consumer sleeps on (both ends must agree). Default: the ring header's own consumer bell. */
  readonly consumerBell?: Bell;
  /** The bell the producer sleeps on (both ends must agree). Default: the ring header's own producer bell. */
  readonly producerBell?: Bell;
}

/**
 * Writes a fresh ring header at `byteOffset`: magic, version, slot size, capacity, indices and flags at 0.
 * Done once, by the side that owns the memory (the driver), before either end joins.
 */
export function initRing(
  buffer: ArrayBufferLike,
  byteOffset: number,
  capacity: number,
  slotSize: number = Descriptor.SIZE,
  ringId = 0xffffffff,
): void {
  checkShape(buffer, byteOffset, capacity, slotSize);
  const u32 = new Uint32Array(buffer, byteOffset, RingHeader.SIZE >> 2);
  u32.fill(0);
  u32[W_VERSION_SLOT] = LAYOUT_VERSION | (slotSize << 16);
  u32[W_CAPACITY] = capacity;
  u32[W_RING_ID] = ringId >>> 0;
  // The magic goes last: a peer that sees it sees a complete header.
  Atomics.store(u32, W_MAGIC, RING_MAGIC);
}

function checkShape(buffer: ArrayBufferLike, byteOffset: number, capacity: number, slotSize: number): void {
  check(isPowerOfTwo(capacity) && capacity <= 2 ** 24, `capacity: expected a power of two <= 2^24, got ${capacity}`);
  check(
    Number.isInteger(slotSize) && slotSize >= 16 && slotSize % 16 === 0 && slotSize <= 4096,
    `slotSize: expected a multiple of 16 in [16, 4096], got ${slotSize}`,
  );
  check(
    Number.isInteger(byteOffset) && byteOffset >= 0 && byteOffset % CACHE_LINE === 0,
    `byteOffset: expected a multiple of ${CACHE_LINE}, got ${byteOffset}`,
  );
  const need = byteOffset + ringBytes(capacity, slotSize);
  check(buffer.byteLength >= need, `buffer: expected at least ${need} bytes, got ${buffer.byteLength}`);
}

/** State and waits shared by both ends of a ring. */
abstract class RingEnd {
  /** Slots (payload) as u32 words: slot k of the ring starts at word `(k & mask) * slotWords`. */
  readonly slots: Uint32Array;
  /** The same slot memory as bytes, for messages that are not descriptors (control rings). */
  readonly slotBytes: Uint8Array;
  /** Number of slots (private copy, never re-read from shared memory). */
  readonly capacity: number;
  /** Bytes per slot. */
  readonly slotSize: number;
  /** u32 words per slot. */
  readonly slotWords: number;
  /**
   * True once the peer wrote an impossible index into shared memory: the ring then reads as empty (consumer)
   * or full (producer) forever. The trusted side treats it as a protocol violation of the peer.
   */
  corrupt = false;
  protected readonly mask: number;
  protected readonly u32: Uint32Array;
  protected readonly i32: Int32Array;
  /** How this end sleeps and wakes its peer. */
  readonly doorbell: Doorbell;
  protected readonly spin: number;
  protected readonly consumerBell: Bell;
  protected readonly producerBell: Bell;
  /** Views of the caller's arrays and of the slots, reused by the bulk copies (see {@link ViewCache}). */
  protected readonly views: ViewCache<Uint32Array>;

  /**
   * Copies `words` words between the slots, from slot word `at` on (wrapping once at the end of the ring),
   * and `lin[linAt, linAt + words)`: into the slots when `toSlots`, out of them otherwise. A run of at least
   * SET_MIN_WORDS is one memcpy (`set` over a cached view); a shorter one goes word by word.
   */
  protected move(toSlots: boolean, lin: Uint32Array, linAt: number, at: number, words: number): void {
    const first = Math.min(words, this.slots.length - at);
    this.segment(toSlots, lin, linAt, at, first);
    if (first < words) this.segment(toSlots, lin, linAt + first, 0, words - first);
  }

  private segment(toSlots: boolean, lin: Uint32Array, linAt: number, at: number, n: number): void {
    const slots = this.slots;
    if (n >= SET_MIN_WORDS) {
      if (toSlots) slots.set(this.views.get(lin, linAt, n), at);
      else lin.set(this.views.get(slots, at, n), linAt);
    } else if (toSlots) {
      for (let i = 0; i < n; i++) slots[at + i] = lin[linAt + i];
    } else {
      for (let i = 0; i < n; i++) lin[linAt + i] = slots[at + i];
    }
  }

  constructor(options: RingOptions) {
    const byteOffset = options.byteOffset ?? 0;
    const slotSize = options.slotSize ?? Descriptor.SIZE;
    checkShape(options.buffer, byteOffset, options.capacity, slotSize);
    this.u32 = new Uint32Array(options.buffer, byteOffset, RingHeader.SIZE >> 2);
    this.i32 = new Int32Array(options.buffer, byteOffset, RingHeader.SIZE >> 2);
    const versionSlot = Atomics.load(this.u32, W_VERSION_SLOT);
    if (
      Atomics.load(this.u32, W_MAGIC) !== RING_MAGIC ||
      (versionSlot & 0xffff) !== LAYOUT_VERSION ||
      versionSlot >>> 16 !== slotSize ||
      this.u32[W_CAPACITY] !== options.capacity
    ) {
      throw new IpcError(
        'EXO_ERR_IPC_BAD_LAYOUT',
        `ring at byte ${byteOffset}: expected magic ${RING_MAGIC.toString(16)} version ${LAYOUT_VERSION} slot ${slotSize} capacity ${options.capacity}, got magic ${this.u32[W_MAGIC].toString(16)} version ${versionSlot & 0xffff} slot ${versionSlot >>> 16} capacity ${this.u32[W_CAPACITY]}`,
      );
    }
    this.capacity = options.capacity;
    this.mask = options.capacity - 1;
    this.slotSize = slotSize;
    this.slotWords = slotSize >> 2;
    const slotsAt = byteOffset + RingHeader.SIZE;
    this.slots = new Uint32Array(options.buffer, slotsAt, (options.capacity * slotSize) >> 2);
    this.slotBytes = new Uint8Array(options.buffer, slotsAt, options.capacity * slotSize);
    this.views = new ViewCache(16, this.slots, this.slotWords);
    this.doorbell = options.doorbell ?? atomicsDoorbell;
    this.spin = options.spin ?? 0;
    this.consumerBell = options.consumerBell ?? { words: this.i32, index: W_CONSUMER_BELL };
    this.producerBell = options.producerBell ?? { words: this.i32, index: W_PRODUCER_BELL };
  }

  /** Wakes both ends even if they did not ask (used on close, so a sleeper notices the new state). */
  wakePeer(): void {
    ring(this.doorbell, this.consumerBell);
    ring(this.doorbell, this.producerBell);
  }

  /** How many slots are ready now (readable for a consumer, writable for a producer), at least `n` if possible. */
  abstract ready(n: number): number;

  /** Stores 1 in this end's need-wakeup flag: the peer will ring our bell after its next publish or release. */
  abstract arm(): void;

  /** Clears this end's need-wakeup flag. */
  abstract disarm(): void;

  /** The bell this end sleeps on. */
  abstract get bell(): Bell;

  protected waitFor(n: number, timeoutMs: number, stop?: () => boolean): boolean {
    for (let i = 0; i < this.spin; i++) if (this.ready(n) >= n) return true;
    const done = () => this.ready(n) >= n || (stop?.() ?? false);
    sleepUntil(this.doorbell, this.bell, done, this.armFn, this.disarmFn, timeoutMs);
    return this.ready(n) >= n;
  }

  protected async waitForAsync(n: number, timeoutMs: number, stop?: () => boolean): Promise<boolean> {
    for (let i = 0; i < this.spin; i++) if (this.ready(n) >= n) return true;
    const done = () => this.ready(n) >= n || (stop?.() ?? false);
    await sleepUntilAsync(this.doorbell, this.bell, done, this.armFn, this.disarmFn, timeoutMs);
    return this.ready(n) >= n;
  }

  private readonly armFn = () => this.arm();
  private readonly disarmFn = () => this.disarm();
}

/**
 * The producing end of an SPSC ring. Writes are staged privately (`push`, `reserve`) and made visible to the
 * consumer by one atomic store of the producer index in {@link RingProducer.publish}; bursts and bulks publish
 * themselves. Not thread-safe: exactly one producer per ring.
 */
export class RingProducer extends RingEnd {
  /** Next slot to write (private, includes staged slots). */
  private tail: number;
  /** Producer index last stored to shared memory. */
  private published: number;
  /** Last consumer index read from shared memory: the producer re-reads it only when this view says full. */
  private cachedHead: number;

  constructor(options: RingOptions) {
    super(options);
    this.tail = Atomics.load(this.u32, W_PRODUCER);
    this.published = this.tail;
    this.cachedHead = Atomics.load(this.u32, W_CONSUMER);
    if ((this.tail - this.cachedHead) >>> 0 > this.capacity) this.corrupt = true;
  }

  /** Free slots, re-reading the consumer index only if the cached view offers fewer than `n`. */
  ready(n = 1): number {
    const free = this.capacity - ((this.tail - this.cachedHead) >>> 0);
    return free >= n ? free : this.refresh();
  }

  /** Staged but unpublished slots. */
  get staged(): number {
    return (this.tail - this.published) >>> 0;
  }

  private refresh(): number {
    if (this.corrupt) return 0;
    const h = Atomics.load(this.u32, W_CONSUMER);
    // The consumer index may only move forward, and never past what was published.
    if ((h - this.cachedHead) >>> 0 > (this.published - this.cachedHead) >>> 0) {
      this.corrupt = true;
      return 0;
    }
    this.cachedHead = h;
    return this.capacity - ((this.tail - h) >>> 0);
  }

  /** Stages one descriptor (the first four words of the slot); false if the ring is full. Call publish() after. */
  push(w0: number, w1: number, w2: number, w3: number): boolean {
    if (this.capacity - ((this.tail - this.cachedHead) >>> 0) === 0 && this.refresh() === 0) return false;
    const s = (this.tail & this.mask) * this.slotWords;
    const slots = this.slots;
    slots[s] = w0;
    slots[s + 1] = w1;
    slots[s + 2] = w2;
    slots[s + 3] = w3;
    this.tail = (this.tail + 1) >>> 0;
    return true;
  }

  /**
   * Stages one slot for the caller to fill in place: returns the index of its first word in {@link slots}
   * (its first byte in {@link slotBytes} is 4 times that), or -1 if the ring is full. Call publish() after.
   */
  reserve(): number {
    if (this.capacity - ((this.tail - this.cachedHead) >>> 0) === 0 && this.refresh() === 0) return -1;
    const s = (this.tail & this.mask) * this.slotWords;
    this.tail = (this.tail + 1) >>> 0;
    return s;
  }

  /**
   * Makes every staged slot visible with one atomic store of the producer index, then wakes the consumer if,
   * and only if, it announced that it sleeps.
   */
  publish(): void {
    if (this.tail === this.published) return;
    Atomics.store(this.u32, W_PRODUCER, this.tail);
    this.published = this.tail;
    if (Atomics.load(this.i32, W_CONSUMER_WAITING) !== 0) {
      Atomics.store(this.i32, W_CONSUMER_WAITING, 0);
      ring(this.doorbell, this.consumerBell);
    }
  }

  arm(): void {
    Atomics.store(this.i32, W_PRODUCER_WAITING, 1);
  }

  disarm(): void {
    Atomics.store(this.i32, W_PRODUCER_WAITING, 0);
  }

  get bell(): Bell {
    return this.producerBell;
  }

  /**
   * Burst: copies as many of `count` slots from `src` (slotWords words each, from word `srcWord`) as fit,
   * publishes them, and returns how many.
   */
  enqueueBurst(src: Uint32Array, count: number, srcWord = 0): number {
    let n = this.ready(count);
    if (n > count) n = count;
    if (n > 0) {
      this.copyIn(src, n, srcWord);
      this.publish();
    }
    return n;
  }

  /** Bulk: all `count` slots or none; true if they were enqueued and published. */
  enqueueBulk(src: Uint32Array, count: number, srcWord = 0): boolean {
    if (this.ready(count) < count) return false;
    if (count > 0) {
      this.copyIn(src, count, srcWord);
      this.publish();
    }
    return true;
  }

  private copyIn(src: Uint32Array, n: number, srcWord: number): void {
    const words = n * this.slotWords;
    checkRange(src, srcWord, words, 'src');
    this.move(true, src, srcWord, (this.tail & this.mask) * this.slotWords, words);
    this.tail = (this.tail + n) >>> 0;
  }

  /** Blocks until `n` slots are free (true), or until the timeout or `stop()` (false). Never spins when idle. */
  waitWritable(n = 1, timeoutMs = Number.POSITIVE_INFINITY, stop?: () => boolean): boolean {
    return this.waitFor(n, timeoutMs, stop);
  }

  /** Resolves when `n` slots are free (true), or on timeout or `stop()` (false), without blocking the event loop. */
  writable(n = 1, timeoutMs = Number.POSITIVE_INFINITY, stop?: () => boolean): Promise<boolean> {
    return this.waitForAsync(n, timeoutMs, stop);
  }
}

/**
 * The consuming end of an SPSC ring. Reads are staged (`pop`, `peek`) and the slots given back by one atomic
 * store of the consumer index in {@link RingConsumer.release}; bursts and bulks release themselves.
 * Everything read from the slots comes from the peer: a trusted consumer copies it out before validating.
 */
export class RingConsumer extends RingEnd {
  /** Next slot to read (private, includes staged reads). */
  private head: number;
  /** Consumer index last stored to shared memory. */
  private released: number;
  /** Last producer index read from shared memory: re-read only when this view says empty. */
  private cachedTail: number;

  constructor(options: RingOptions) {
    super(options);
    this.head = Atomics.load(this.u32, W_CONSUMER);
    this.released = this.head;
    this.cachedTail = Atomics.load(this.u32, W_PRODUCER);
    if ((this.cachedTail - this.head) >>> 0 > this.capacity) this.corrupt = true;
  }

  /** Filled slots, re-reading the producer index only if the cached view offers fewer than `n`. */
  ready(n = 1): number {
    const avail = (this.cachedTail - this.head) >>> 0;
    return avail >= n ? avail : this.refresh();
  }

  private refresh(): number {
    if (this.corrupt) return 0;
    const t = Atomics.load(this.u32, W_PRODUCER);
    // The producer index may only move forward, and never more than a capacity ahead of what we released.
    if ((t - this.cachedTail) >>> 0 > (this.released + this.capacity - this.cachedTail) >>> 0) {
      this.corrupt = true;
      return 0;
    }
    this.cachedTail = t;
    return (t - this.head) >>> 0;
  }

  /** Copies one slot into `dst` at `dstWord` (staged); false if empty. Call release() after. */
  pop(dst: Uint32Array, dstWord = 0): boolean {
    if (this.cachedTail === this.head && this.refresh() === 0) return false;
    let s = (this.head & this.mask) * this.slotWords;
    const slots = this.slots;
    for (let w = 0; w < this.slotWords; w++) dst[dstWord + w] = slots[s++];
    this.head = (this.head + 1) >>> 0;
    return true;
  }

  /**
   * Stages the next slot for reading in place: its first word in {@link slots}, or -1 if empty. The slot
   * stays valid until release(); a trusted reader must still copy before validating (the peer can rewrite it).
   */
  peek(): number {
    if (this.cachedTail === this.head && this.refresh() === 0) return -1;
    const s = (this.head & this.mask) * this.slotWords;
    this.head = (this.head + 1) >>> 0;
    return s;
  }

  /** Gives staged slots back to the producer with one atomic store; wakes it if it announced it sleeps. */
  release(): void {
    if (this.head === this.released) return;
    Atomics.store(this.u32, W_CONSUMER, this.head);
    this.released = this.head;
    if (Atomics.load(this.i32, W_PRODUCER_WAITING) !== 0) {
      Atomics.store(this.i32, W_PRODUCER_WAITING, 0);
      ring(this.doorbell, this.producerBell);
    }
  }

  arm(): void {
    Atomics.store(this.i32, W_CONSUMER_WAITING, 1);
  }

  disarm(): void {
    Atomics.store(this.i32, W_CONSUMER_WAITING, 0);
  }

  get bell(): Bell {
    return this.consumerBell;
  }

  /** Burst: copies up to `max` slots into `dst` from word `dstWord`, releases them, returns how many. */
  dequeueBurst(dst: Uint32Array, max: number, dstWord = 0): number {
    let n = this.ready(max);
    if (n > max) n = max;
    if (n > 0) {
      this.copyOut(dst, n, dstWord);
      this.release();
    }
    return n;
  }

  /** Bulk: exactly `count` slots or none; true if they were dequeued. */
  dequeueBulk(dst: Uint32Array, count: number, dstWord = 0): boolean {
    if (this.ready(count) < count) return false;
    if (count > 0) {
      this.copyOut(dst, count, dstWord);
      this.release();
    }
    return true;
  }

  private copyOut(dst: Uint32Array, n: number, dstWord: number): void {
    const words = n * this.slotWords;
    checkRange(dst, dstWord, words, 'dst');
    this.move(false, dst, dstWord, (this.head & this.mask) * this.slotWords, words);
    this.head = (this.head + n) >>> 0;
  }

  /** Blocks until `n` slots are filled (true), or until the timeout or `stop()` (false). Never spins when idle. */
  waitReadable(n = 1, timeoutMs = Number.POSITIVE_INFINITY, stop?: () => boolean): boolean {
    return this.waitFor(n, timeoutMs, stop);
  }

  /** Resolves when `n` slots are filled (true), or on timeout or `stop()` (false), without blocking the event loop. */
  readable(n = 1, timeoutMs = Number.POSITIVE_INFINITY, stop?: () => boolean): Promise<boolean> {
    return this.waitForAsync(n, timeoutMs, stop);
  }
}
