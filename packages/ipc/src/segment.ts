import type { GroupMembership } from './channel-group.ts';
import { atomicsDoorbell, type Doorbell } from './doorbell.ts';
import { IpcError } from './errors.ts';
import {
  CHANNEL_MAGIC,
  ChannelHeader,
  type ChannelLayout,
  ChannelState,
  CONTROL_PAYLOAD,
  CONTROL_SLOT_SIZE,
  Descriptor,
  isPowerOfTwo,
  LAYOUT_VERSION,
  POOL_ALIGN,
  RING_COUNT,
  RingId,
  ringBytes,
  TASK_PRODUCED,
} from './layout.ts';
import { type Bell, initRing, RingConsumer, RingProducer } from './ring.ts';
import { futexDoorbell, SharedMemory } from './shm.ts';

/**
 * What the driver hands a task so it can attach: the SharedArrayBuffer itself for a worker thread (post it
 * or put it in workerData), or the POSIX shared memory name for another process (pass it as an argument).
 */
export type ChannelHandle =
  | { readonly transport: 'thread'; readonly buffer: SharedArrayBuffer; readonly group?: GroupMembership }
  | { readonly transport: 'process'; readonly name: string; readonly group?: GroupMembership };

/** The memory of a channel and how to sleep on it. */
export interface Segment {
  readonly buffer: ArrayBufferLike;
  readonly doorbell: Doorbell;
  readonly handle: ChannelHandle;
  /** Unmaps (process transport); a SharedArrayBuffer is left to the garbage collector. */
  unmap(): void;
}

/** Allocates zeroed memory for a channel. */
export function createSegment(transport: 'thread' | 'process', size: number, name?: string): Segment {
  if (transport === 'thread') {
    const buffer = new SharedArrayBuffer(size);
    return { buffer, doorbell: atomicsDoorbell, handle: { transport, buffer }, unmap() {} };
  }
  const shm = SharedMemory.create(size, name);
  return {
    buffer: shm.buffer,
    doorbell: futexDoorbell,
    handle: { transport, name: shm.name },
    unmap: () => shm.close(),
  };
}

/** Maps the memory a handle names. */
export function openSegment(handle: ChannelHandle): Segment {
  if (handle?.transport === 'thread') {
    if (!(handle.buffer instanceof SharedArrayBuffer)) {
      throw new IpcError('EXO_ERR_IPC_INVALID_ARGUMENT', 'handle.buffer: expected a SharedArrayBuffer');
    }
    return { buffer: handle.buffer, doorbell: atomicsDoorbell, handle, unmap() {} };
  }
  if (handle?.transport === 'process') {
    const shm = SharedMemory.open(handle.name);
    return { buffer: shm.buffer, doorbell: futexDoorbell, handle, unmap: () => shm.close() };
  }
  throw new IpcError('EXO_ERR_IPC_INVALID_ARGUMENT', 'handle: expected { transport: "thread" | "process", ... }');
}

/** Writes the channel header and every ring header (driver side, once, before handing the segment out). */
export function initSegment(buffer: ArrayBufferLike, layout: ChannelLayout): void {
  const u32 = new Uint32Array(buffer, 0, ChannelHeader.SIZE >> 2);
  u32.fill(0);
  u32[ChannelHeader.VERSION >> 2] = LAYOUT_VERSION;
  u32[ChannelHeader.SEGMENT_SIZE >> 2] = layout.segmentSize;
  u32[ChannelHeader.FRAME_SIZE >> 2] = layout.frameSize;
  u32[ChannelHeader.FRAME_COUNT >> 2] = layout.frameCount;
  u32[ChannelHeader.POOL_OFFSET >> 2] = layout.poolOffset;
  u32[ChannelHeader.STATE >> 2] = ChannelState.CREATED;
  u32[ChannelHeader.DRIVER_PID >> 2] = process.pid;
  layout.rings.forEach((r, id) => {
    const e = (ChannelHeader.RING_TABLE + id * ChannelHeader.RING_ENTRY) >> 2;
    u32[e] = r.offset;
    u32[e + 1] = r.capacity;
    u32[e + 2] = r.slotSize;
    initRing(buffer, r.offset, r.capacity, r.slotSize, id);
  });
  Atomics.store(u32, ChannelHeader.MAGIC >> 2, CHANNEL_MAGIC);
}

/**
 * Reads the layout back from a segment's header (task side: the task trusts its driver, but still refuses a
 * header whose parts do not fit the segment, so a bad handle fails with an error rather than a crash).
 */
export function readLayout(buffer: ArrayBufferLike): ChannelLayout {
  const bad = (what: string) => new IpcError('EXO_ERR_IPC_BAD_LAYOUT', `channel header: ${what}`);
  if (buffer.byteLength < ChannelHeader.SIZE) throw bad(`segment of ${buffer.byteLength} bytes is too small`);
  const u32 = new Uint32Array(buffer, 0, ChannelHeader.SIZE >> 2);
  if (Atomics.load(u32, ChannelHeader.MAGIC >> 2) !== CHANNEL_MAGIC) throw bad('magic is not "EXOC"');
  if (u32[ChannelHeader.VERSION >> 2] !== LAYOUT_VERSION) throw bad(`version ${u32[ChannelHeader.VERSION >> 2]}`);
  const segmentSize = u32[ChannelHeader.SEGMENT_SIZE >> 2];
  const frameSize = u32[ChannelHeader.FRAME_SIZE >> 2];
  const frameCount = u32[ChannelHeader.FRAME_COUNT >> 2];
  const poolOffset = u32[ChannelHeader.POOL_OFFSET >> 2];
  if (segmentSize > buffer.byteLength) throw bad(`segment size ${segmentSize} > mapped ${buffer.byteLength}`);
  if (!isPowerOfTwo(frameSize) || frameSize < 64 || frameCount < 1) throw bad('frame size or count');
  if (poolOffset % POOL_ALIGN !== 0 || poolOffset + frameSize * frameCount > segmentSize) throw bad('pool bounds');
  const rings: ChannelLayout['rings'][number][] = [];
  for (let id = 0; id < RING_COUNT; id++) {
    const e = (ChannelHeader.RING_TABLE + id * ChannelHeader.RING_ENTRY) >> 2;
    const offset = u32[e];
    const capacity = u32[e + 1];
    const slotSize = u32[e + 2];
    const control = id === RingId.CTL_REQUEST || id === RingId.CTL_RESPONSE;
    if (slotSize !== (control ? CONTROL_SLOT_SIZE : Descriptor.SIZE)) throw bad(`ring ${id} slot size ${slotSize}`);
    if (!isPowerOfTwo(capacity) || capacity > 2 ** 24) throw bad(`ring ${id} capacity ${capacity}`);
    if (offset < ChannelHeader.SIZE || offset % 64 !== 0 || offset + ringBytes(capacity, slotSize) > poolOffset) {
      throw bad(`ring ${id} bounds`);
    }
    rings.push({ offset, capacity, slotSize });
  }
  return { frameSize, frameCount, rings, poolOffset, segmentSize };
}

/** The six ring ends one side of a channel holds, indexed by {@link RingId}. */
export interface RingSet {
  readonly producers: (RingProducer | undefined)[];
  readonly consumers: (RingConsumer | undefined)[];
  /** The bell this side sleeps on. */
  readonly bell: Bell;
}

/**
 * Joins every ring of a segment from one side. Every wait of a side sleeps on that side's channel bell, so
 * it can wait for any of its rings at once; its peer rings that bell.
 */
export function openRings(segment: Segment, layout: ChannelLayout, side: 'driver' | 'task', spin = 0): RingSet {
  const i32 = new Int32Array(segment.buffer, 0, ChannelHeader.SIZE >> 2);
  const driverBell: Bell = { words: i32, index: ChannelHeader.DRIVER_BELL >> 2 };
  const taskBell: Bell = { words: i32, index: ChannelHeader.TASK_BELL >> 2 };
  const producers: (RingProducer | undefined)[] = [];
  const consumers: (RingConsumer | undefined)[] = [];
  layout.rings.forEach((r, id) => {
    const taskProduces = TASK_PRODUCED[id];
    const options = {
      buffer: segment.buffer,
      byteOffset: r.offset,
      capacity: r.capacity,
      slotSize: r.slotSize,
      doorbell: segment.doorbell,
      spin,
      producerBell: taskProduces ? taskBell : driverBell,
      consumerBell: taskProduces ? driverBell : taskBell,
    };
    const produces = (side === 'task') === taskProduces;
    producers.push(produces ? new RingProducer(options) : undefined);
    consumers.push(produces ? undefined : new RingConsumer(options));
  });
  return { producers, consumers, bell: side === 'driver' ? driverBell : taskBell };
}

/** A small message on a control ring: 16 bytes of header and up to {@link CONTROL_PAYLOAD} bytes of payload. */
export interface ControlMessage {
  /** What the message is (attach, grant install, ack...): the protocol above this package defines the values. */
  readonly type: number;
  /** Request id; a response carries the id of its request. */
  readonly id: number;
  /** 0 for ok; otherwise an error code of the protocol above. */
  readonly status: number;
  readonly payload: Uint8Array;
}

/** Writes a control message into the next slot of `ring`; false if the ring is full. */
export function writeControl(ring: RingProducer, message: ControlMessage): boolean {
  if (message.payload.length > CONTROL_PAYLOAD) {
    throw new IpcError(
      'EXO_ERR_IPC_INVALID_ARGUMENT',
      `payload: expected at most ${CONTROL_PAYLOAD} bytes, got ${message.payload.length} (put larger data in a frame)`,
    );
  }
  const s = ring.reserve();
  if (s < 0) return false;
  ring.slots[s] = message.type >>> 0;
  ring.slots[s + 1] = message.id >>> 0;
  ring.slots[s + 2] = message.status >>> 0;
  ring.slots[s + 3] = message.payload.length;
  ring.slotBytes.set(message.payload, s * 4 + 16);
  ring.publish();
  return true;
}

/** Reads the next control message (copied out of shared memory), or undefined; null if its length is invalid. */
export function readControl(ring: RingConsumer): ControlMessage | undefined | null {
  const s = ring.peek();
  if (s < 0) return undefined;
  const type = ring.slots[s];
  const id = ring.slots[s + 1];
  const status = ring.slots[s + 2];
  const length = ring.slots[s + 3];
  const payload = length <= CONTROL_PAYLOAD ? ring.slotBytes.slice(s * 4 + 16, s * 4 + 16 + length) : null;
  ring.release();
  return payload ? { type, id, status, payload } : null;
}
