/**
 * The shared-memory layout, byte by byte: the single source of the offsets that docs/ipc-layout.md specifies.
 * Everything is little-endian; every index and flag is a naturally aligned 32-bit word so that a C peer can use
 * plain `_Atomic uint32_t` accesses and futex(2) on the same words.
 */

/** Size of a cache line: producer and consumer state never share one. */
export const CACHE_LINE = 64;

/** 'RING' read as a little-endian u32: the first word of every ring header. */
export const RING_MAGIC = 0x474e4952;
/** 'EXOC' read as a little-endian u32: the first word of every channel segment. */
export const CHANNEL_MAGIC = 0x434f5845;
/** Version of both the ring and the channel layout. */
export const LAYOUT_VERSION = 1;

/** Byte offsets inside a ring header (relative to the ring's base). The slots follow the header. */
export const RingHeader = {
  /** u32: {@link RING_MAGIC}. Line 0 is written once by the creator and only read afterwards. */
  MAGIC: 0,
  /** u16: {@link LAYOUT_VERSION}. */
  VERSION: 4,
  /** u16: slot size in bytes (16 for descriptors). */
  SLOT_SIZE: 6,
  /** u32: capacity in slots, a power of two. Informative only: each side keeps its own copy. */
  CAPACITY: 8,
  /** u32: the ring's role in its channel (see {@link RingId}), or 0xffffffff for a free-standing ring. */
  RING_ID: 12,
  /** u32: producer index, free-running (mod 2^32); written only by the producer. Cache line 1. */
  PRODUCER: 64,
  /** u32: consumer index, free-running (mod 2^32); written only by the consumer. Cache line 2. */
  CONSUMER: 128,
  /**
   * i32 need-wakeup flag: 1 while the consumer sleeps (or is about to) waiting for data. The producer, after
   * publishing, clears it, increments the consumer's bell and wakes the bell's sleepers. Cache line 3.
   */
  CONSUMER_WAITING: 192,
  /** i32 bell (a wake-up counter) the consumer of a free-standing ring sleeps on; channels use a channel bell. */
  CONSUMER_BELL: 196,
  /** i32 need-wakeup flag: 1 while the producer sleeps (or is about to) waiting for space. */
  PRODUCER_WAITING: 224,
  /** i32 bell the producer of a free-standing ring sleeps on; channels use a channel bell. */
  PRODUCER_BELL: 228,
  /** Size of the header; slot 0 starts here. */
  SIZE: 256,
} as const;

/** The descriptor: one 16-byte slot of a packet ring, four little-endian u32 words. */
export const Descriptor = {
  /** Word 0: byte offset of the frame in the channel's packet pool (a multiple of the frame size). */
  OFFSET: 0,
  /** Word 1: length in bytes of the data in the frame (at most the frame size). */
  LENGTH: 1,
  /** Word 2: opaque tag chosen by whoever fills the frame (sequence number, filter id...). */
  TAG: 2,
  /** Word 3: status (see {@link DescriptorStatus}); 0 means ok. */
  STATUS: 3,
  /** Words per descriptor. */
  WORDS: 4,
  /** Bytes per descriptor. */
  SIZE: 16,
} as const;

/** Values of a descriptor's status word that the driver writes on completions. */
export const DescriptorStatus = {
  OK: 0,
  /** The transmit was refused (no grant matched, firewall...). */
  DENIED: 1,
  /** The descriptor was invalid; the frame comes back untouched. */
  INVALID: 2,
  /** The frame was truncated to the frame size. */
  TRUNCATED: 3,
  /**
   * Received: this buffer holds one piece of a frame larger than a buffer, and the next descriptor of the ring
   * continues it (with the same tag); the last piece carries OK. Only a shared receive queue chains buffers.
   */
  MORE: 4,
} as const;

/**
 * The six rings of a channel, in segment order, and who produces each. "free" and "active" pair up per
 * direction as in seL4's sDDF: a frame always goes back along the edge it came from.
 */
export const RingId = {
  /** task -> driver: empty frames the driver may fill with received packets. */
  RX_FREE: 0,
  /** driver -> task: frames holding received packets. */
  RX_ACTIVE: 1,
  /** task -> driver: frames holding packets to transmit. */
  TX_ACTIVE: 2,
  /** driver -> task: transmitted (or refused) frames given back, status in the descriptor. */
  TX_FREE: 3,
  /** task -> driver: control requests (attach, grant install...), {@link CONTROL_SLOT_SIZE} bytes each. */
  CTL_REQUEST: 4,
  /** driver -> task: control responses. */
  CTL_RESPONSE: 5,
} as const;
export type RingId = (typeof RingId)[keyof typeof RingId];
/** Number of rings in a channel. */
export const RING_COUNT = 6;
/** Rings the task produces into (and the driver consumes from, validating every slot). */
export const TASK_PRODUCED: readonly boolean[] = [true, false, true, false, true, false];

/** Slot size of the control rings: a 16-byte header (type, id, status, length) and 240 payload bytes. */
export const CONTROL_SLOT_SIZE = 256;
/** Bytes of payload in one control message. */
export const CONTROL_PAYLOAD = CONTROL_SLOT_SIZE - 16;

/** Byte offsets inside the channel header at the start of a channel segment. */
export const ChannelHeader = {
  /** u32: {@link CHANNEL_MAGIC}. */
  MAGIC: 0,
  /** u32: {@link LAYOUT_VERSION}. */
  VERSION: 4,
  /** u32: total size of the segment in bytes. */
  SEGMENT_SIZE: 8,
  /** u32: frame size in bytes (a power of two, >= 64). */
  FRAME_SIZE: 12,
  /** u32: number of frames in the pool. */
  FRAME_COUNT: 16,
  /** u32: byte offset of the pool (a multiple of 4096). */
  POOL_OFFSET: 20,
  /** i32: channel state, see {@link ChannelState}. Written by both sides. */
  STATE: 24,
  /** u32: process id of the driver. */
  DRIVER_PID: 28,
  /** u32: process id of the task, written by the task when it attaches (informative: never trusted). */
  TASK_PID: 32,
  /** i32 bell every wait of the driver side sleeps on (a counter its peers increment before futex-waking it). */
  DRIVER_BELL: 36,
  /** i32 bell every wait of the task side sleeps on. */
  TASK_BELL: 40,
  /**
   * i32 "task posted" flag: the task stores 1 after it published on tx_active or ctl_request (or closed); the
   * driver swaps it to 0 before draining those rings, so it visits only the tasks that posted something.
   */
  TASK_POSTED: 44,
  /** Ring table: {@link RING_COUNT} entries of 16 bytes: u32 offset, u32 capacity, u32 slot size, u32 0. */
  RING_TABLE: 64,
  /** Size of one ring table entry. */
  RING_ENTRY: 16,
  /** Size of the channel header; the first ring starts here. */
  SIZE: 256,
} as const;

/** Life cycle of a channel, stored in {@link ChannelHeader.STATE}. */
export const ChannelState = {
  /** Created by the driver, no task yet. */
  CREATED: 0,
  /** A task attached. */
  ATTACHED: 1,
  /** The task closed its end. */
  TASK_CLOSED: 2,
  /** The driver closed the channel or disconnected the task. */
  DRIVER_CLOSED: 3,
} as const;

/** Pool alignment: frames start on a page boundary. */
export const POOL_ALIGN = 4096;

/** Rounds `n` up to a multiple of `align` (a power of two). */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** True if `n` is a power of two in [1, 2^30]. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 2 ** 30 && (n & (n - 1)) === 0;
}

/** Bytes a ring takes: header plus slots, rounded to a cache line. */
export function ringBytes(capacity: number, slotSize: number): number {
  return alignUp(RingHeader.SIZE + capacity * slotSize, CACHE_LINE);
}

/** Where each part of a channel segment lies. */
export interface ChannelLayout {
  readonly frameSize: number;
  readonly frameCount: number;
  /** For each {@link RingId}: byte offset, capacity and slot size. */
  readonly rings: readonly { readonly offset: number; readonly capacity: number; readonly slotSize: number }[];
  readonly poolOffset: number;
  readonly segmentSize: number;
}

/** Computes the layout of a channel segment; the packet rings hold every frame so they can never overflow. */
export function channelLayout(frameSize: number, frameCount: number, controlCapacity: number): ChannelLayout {
  const packetCapacity = nextPowerOfTwo(frameCount);
  const rings: { offset: number; capacity: number; slotSize: number }[] = [];
  let at = ChannelHeader.SIZE;
  for (let id = 0; id < RING_COUNT; id++) {
    const control = id === RingId.CTL_REQUEST || id === RingId.CTL_RESPONSE;
    const capacity = control ? controlCapacity : packetCapacity;
    const slotSize = control ? CONTROL_SLOT_SIZE : Descriptor.SIZE;
    rings.push({ offset: at, capacity, slotSize });
    at += ringBytes(capacity, slotSize);
  }
  const poolOffset = alignUp(at, POOL_ALIGN);
  return { frameSize, frameCount, rings, poolOffset, segmentSize: poolOffset + frameSize * frameCount };
}

/** Smallest power of two >= n (n >= 1). */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
