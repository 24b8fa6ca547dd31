/**
 * Channel groups: one doorbell for many channels whose tasks share one event loop (a worker thread or a
 * process hosting many tasks). Without a group each channel has its own bell, so with traffic spread over a
 * thousand channels every datagram wakes a different waiter: a notify, a promise resolution and an event-loop
 * turn per datagram. With a group the driver marks which member channels it published something to in a
 * pending bitmap, and rings the group's one bell only if the group's poller announced that it sleeps; the
 * poller then drains every marked channel in one turn, without looking at the idle ones.
 *
 * The layout and the wake-up protocol are specified in docs/ipc-layout.md ("Channel group").
 * @module
 */
import { randomBytes } from 'node:crypto';
import { atomicsDoorbell, type Doorbell } from './doorbell.ts';
import { createChannel, type DriverChannel } from './driver-channel.ts';
import { check, IpcError } from './errors.ts';
import { DescriptorStatus } from './layout.ts';
import { ring } from './ring.ts';
import type { ChannelHandle } from './segment.ts';
import { futexDoorbell, SharedMemory } from './shm.ts';
import { attachChannel, type TaskChannel } from './task-channel.ts';

/** 'EXOG' read as a little-endian u32: the first word of every group segment. */
export const GROUP_MAGIC = 0x474f5845;

/** Byte offsets inside a group segment. */
export const GroupHeader = {
  /** u32: {@link GROUP_MAGIC}, written last. */
  MAGIC: 0,
  /** u32: layout version (1). */
  VERSION: 4,
  /** u32: members the bitmap has room for, a multiple of 32. */
  CAPACITY: 8,
  /** u32 x 2: a random id naming the group (the same group posted twice to a thread is one group). */
  ID: 12,
  /** i32 need-wakeup flag: 1 while the task side's poller sleeps (or is about to). Cache line 1. */
  TASK_WAITING: 64,
  /** i32 bell (wake-up counter) the task side's poller sleeps on. */
  TASK_BELL: 68,
  /**
   * u32 words of the task pending bitmap: bit m of word m >> 5 set by the driver when it left member m
   * something (received frames, completions, control responses, a closed state). Cache line 2 on. The driver
   * pending bitmap (set by the tasks, taken by the driver) follows at {@link driverPendingOffset}.
   */
  PENDING: 128,
} as const;

/** Byte offset of the driver pending bitmap of a group of `capacity` members (a cache line of its own). */
export function driverPendingOffset(capacity: number): number {
  return GroupHeader.PENDING + Math.ceil((((capacity + 31) >> 5) * 4) / 64) * 64;
}

/** Version of the group layout. */
export const GROUP_VERSION = 1;

/** Bytes of a group segment of `capacity` members. */
export function groupBytes(capacity: number): number {
  return driverPendingOffset(capacity) + ((capacity + 31) >> 5) * 4;
}

/** The group's shared receive queue as the task side finds it in the {@link GroupHandle}. */
export interface SharedRxHandle {
  /** The queue's channel (only its receive rings and pool are used), without a group membership. */
  readonly channel: ChannelHandle;
  /** The queue's own member index: its bit in the pending bitmap says it holds frames. */
  readonly member: number;
}

/** What the driver hands the task side of a group (inside each member's channel handle). */
export type GroupHandle = (
  | { readonly transport: 'thread'; readonly id: string; readonly buffer: SharedArrayBuffer }
  | { readonly transport: 'process'; readonly id: string; readonly name: string }
) & { readonly sharedRx?: SharedRxHandle };

/** A channel's place in a group, carried by its {@link ChannelHandle}. */
export interface GroupMembership {
  readonly group: GroupHandle;
  /** The member index: the channel's bit in the pending bitmap. */
  readonly member: number;
  /**
   * The tag the driver puts on this member's frames in the group's shared receive queue: the member index in
   * the low 20 bits, and above them a count of the index's reuse, so that a frame left in the queue for an
   * earlier holder of the index never reaches a later one.
   */
  readonly rxTag: number;
}

/** Member indexes take the low 20 bits of a shared receive queue's tag; the reuse count the 12 above. */
const TAG_MEMBER_BITS = 20;
const TAG_MEMBER_MASK = (1 << TAG_MEMBER_BITS) - 1;
/** Default buffer size of a shared receive queue: a minimum-size frame (60 bytes, 64 with a VLAN tag) fits. */
const SHARED_RX_FRAME_SIZE = 128;
/** A busy-polling window given in µs, checked, in ms (what the poller compares with performance.now()). */
function busyPollMs(micros: number): number {
  check(Number.isFinite(micros) && micros >= 0, `busyPollMicros: expected a number >= 0, got ${micros}`);
  return micros / 1000;
}

/** The longest frame a shared receive queue's poller joins from several buffers (a 64 KiB jumbo is plenty). */
const MAX_JOINED = 65_536;

/** Options of {@link createChannelGroup}. */
export interface GroupOptions {
  /** 'thread' (SharedArrayBuffer) or 'process' (POSIX shared memory), as the member channels. Default thread. */
  readonly transport?: 'thread' | 'process';
  /** Most members at once. Default 1024. */
  readonly capacity?: number;
  /**
   * Gives the group a shared receive queue of this many frames (a power of two is not required; default none).
   * The driver then puts every member's received frames, each tagged with its member's {@link
   * GroupMembership.rxTag}, into this one queue instead of each member's own receive ring, and the group's
   * poller hands each frame to its member. The members share one event loop, so they share memory already:
   * the queue exposes nothing to a member that it could not read anyway. What it saves is the spread: with
   * a thousand members, frames for different members go to consecutive slots and frames of one pool, so the
   * driver writes lines it wrote a moment ago instead of a thousand members' rings and pools (InfiniBand's
   * shared receive queue, AF_XDP's shared UMEM).
   *
   * `frameSize` (a power of two, default 128) is the size of the queue's buffers: a frame larger than one
   * goes into several (a chain, joined again by the poller before its member sees it). Small buffers keep
   * the queue's pool within the reach of the TLB: 8,192 buffers of 2 KiB span 16 MiB of pages, each touched
   * for one line, and at 1,000 receivers that cost a fifth of the driver's rate (`exonet bench e2e`).
   */
  readonly sharedRx?: { readonly frameCount: number; readonly frameSize?: number };
}

/**
 * Calls `visit` with the index of every bit set in `bitmap`, taking each word with one exchange (cleared
 * before its visits, so a bit set from now on is seen by the next call, never lost). Returns how many.
 */
function takeMarked(bitmap: Int32Array, visit: (member: number) => void): number {
  let n = 0;
  for (let w = 0; w < bitmap.length; w++) {
    if (Atomics.load(bitmap, w) === 0) continue;
    let bits = Atomics.exchange(bitmap, w, 0);
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      n++;
      visit((w << 5) | (31 - Math.clz32(low)));
    }
  }
  return n;
}

/**
 * The driver's (trusted) end of a group. The driver only writes to the group's memory (pending bits, the
 * bell) and reads the need-wakeup flag, which at worst costs it a spurious wake-up call: nothing a task writes
 * there can make it touch other memory or skip a member.
 */
export class DriverChannelGroup {
  readonly handle: GroupHandle;
  /** Members the bitmap has room for (the driver's private copy). */
  readonly capacity: number;
  readonly #words: Int32Array;
  readonly #pending: Int32Array;
  readonly #driverPending: Int32Array;
  readonly #doorbell: Doorbell;
  readonly #shm: SharedMemory | undefined;
  readonly #used: Uint8Array;
  /** Per member index: how many times it was taken, the high bits of its shared receive queue tag. */
  readonly #reuse: Uint16Array;
  #members = 0;
  #next = 0;
  #closed = false;
  /** The shared receive queue (see {@link GroupOptions.sharedRx}), or undefined. */
  readonly sharedRx: DriverChannel | undefined;

  /** Use {@link createChannelGroup}. */
  constructor(
    transport: 'thread' | 'process',
    capacity: number,
    sharedRx?: { readonly frameCount: number; readonly frameSize?: number },
  ) {
    check(
      Number.isInteger(capacity) && capacity >= 1 && capacity <= 1 << 20,
      `capacity: expected 1..2^20, got ${capacity}`,
    );
    this.capacity = ((capacity + 31) >> 5) << 5;
    const size = groupBytes(this.capacity);
    const idBytes = randomBytes(8);
    const id = idBytes.toString('hex');
    let buffer: ArrayBufferLike;
    if (transport === 'thread') {
      const sab = new SharedArrayBuffer(size);
      buffer = sab;
      this.handle = { transport, id, buffer: sab };
      this.#doorbell = atomicsDoorbell;
    } else {
      this.#shm = SharedMemory.create(size);
      buffer = this.#shm.buffer;
      this.handle = { transport, id, name: this.#shm.name };
      this.#doorbell = futexDoorbell;
    }
    const u32 = new Uint32Array(buffer, 0, 5);
    u32[GroupHeader.VERSION >> 2] = GROUP_VERSION;
    u32[GroupHeader.CAPACITY >> 2] = this.capacity;
    u32[GroupHeader.ID >> 2] = idBytes.readUInt32LE(0);
    u32[(GroupHeader.ID >> 2) + 1] = idBytes.readUInt32LE(4);
    Atomics.store(u32, GroupHeader.MAGIC >> 2, GROUP_MAGIC);
    this.#words = new Int32Array(buffer, 0, GroupHeader.PENDING >> 2);
    this.#pending = new Int32Array(buffer, GroupHeader.PENDING, this.capacity >> 5);
    this.#driverPending = new Int32Array(buffer, driverPendingOffset(this.capacity), this.capacity >> 5);
    this.#used = new Uint8Array(this.capacity);
    this.#reuse = new Uint16Array(this.capacity);
    if (sharedRx !== undefined) {
      // A member of its own group: its flush marks its bit, so the poller learns of frames as of any member's.
      let queue: DriverChannel;
      try {
        queue = createChannel({
          transport,
          frameCount: sharedRx.frameCount,
          frameSize: sharedRx.frameSize ?? SHARED_RX_FRAME_SIZE,
          controlCapacity: 1,
          group: this,
        });
      } catch (err) {
        // A refused queue (a bad frame size) must not leave the group's own segment behind.
        this.close();
        throw err;
      }
      this.sharedRx = queue;
      const { group: _membership, ...channel } = queue.handle;
      this.handle = { ...this.handle, sharedRx: { channel: channel as ChannelHandle, member: queue.member } };
    }
  }

  /** Members now. */
  get size(): number {
    return this.#members;
  }

  /**
   * Takes a free member index (createChannel does, for a channel created with this group).
   * @throws IpcError EXO_ERR_IPC_INVALID_ARGUMENT when the group is full, EXO_ERR_IPC_CLOSED when closed
   */
  join(): number {
    if (this.#closed) throw new IpcError('EXO_ERR_IPC_CLOSED', 'the channel group is closed');
    check(this.#members < this.capacity, `group: all ${this.capacity} members taken`);
    while (this.#used[this.#next] === 1) this.#next = (this.#next + 1) % this.capacity;
    const m = this.#next;
    this.#used[m] = 1;
    this.#reuse[m] = (this.#reuse[m] + 1) & 0xfff;
    this.#members++;
    return m;
  }

  /** The shared receive queue tag of the current holder of member index `member` (see {@link GroupMembership}). */
  rxTag(member: number): number {
    return ((this.#reuse[member] << TAG_MEMBER_BITS) | member) >>> 0;
  }

  /** Frees a member index (its channel closed); its pending bit is cleared so a new member starts clean. */
  leave(member: number): void {
    if (member < 0 || member >= this.capacity || this.#used[member] === 0) return;
    this.#used[member] = 0;
    this.#members--;
    if (!this.#closed) Atomics.and(this.#pending, member >> 5, ~(1 << (member & 31)));
  }

  /**
   * Marks `member` pending, then wakes the task side's poller if, and only if, it announced that it sleeps.
   * Call after publishing to the member's channel (the order is what makes lost wake-ups impossible).
   */
  post(member: number): void {
    this.mark(member);
    this.kick();
  }

  /**
   * The first half of {@link post}: marks `member` pending without looking at the poller's flag. A driver that
   * flushes many members in one turn marks each, then calls {@link kick} once: the poller then wakes once per
   * turn, not once per member it happened to catch up with.
   */
  mark(member: number): void {
    if (this.#closed) return;
    const bit = 1 << (member & 31);
    const w = member >> 5;
    // A plain load first: while the poller is behind, the bit is usually still set and no RMW is needed.
    if ((Atomics.load(this.#pending, w) & bit) === 0) Atomics.or(this.#pending, w, bit);
  }

  /** The second half of {@link post}: wakes the poller if, and only if, it announced that it sleeps. */
  kick(): void {
    if (this.#closed) return;
    const words = this.#words;
    if (Atomics.load(words, GroupHeader.TASK_WAITING >> 2) !== 0) {
      Atomics.store(words, GroupHeader.TASK_WAITING >> 2, 0);
      ring(this.#doorbell, { words, index: GroupHeader.TASK_BELL >> 2 });
    }
  }

  /**
   * Calls `visit` with each member whose task marked it in the driver pending bitmap since the last call (it
   * published a request or frames to send), clearing each word before the visits so nothing posted later is
   * missed. The bits are the tasks' word: `visit` may get any index below {@link capacity}, including free
   * ones, and must look it up in its own table. Returns how many bits were set.
   */
  takeDriverPending(visit: (member: number) => void): number {
    if (this.#closed) return 0;
    return takeMarked(this.#driverPending, visit);
  }

  /** Wakes the poller whatever its flag says (used when closing). */
  wake(): void {
    if (this.#closed) return;
    ring(this.#doorbell, { words: this.#words, index: GroupHeader.TASK_BELL >> 2 });
  }

  /** Removes the shared memory name (process transport): once every member attached nobody needs it. */
  unlinkName(): void {
    if (this.#shm === undefined) return;
    try {
      SharedMemory.unlink(this.#shm.name);
    } catch {
      // Already gone.
    }
  }

  /** Unmaps the group (process transport) and removes its name. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.sharedRx?.close();
    this.wake();
    this.#closed = true;
    this.unlinkName();
    this.#shm?.close();
  }
}

/** Creates a channel group (driver side); pass it as `group` to createChannel for each member channel. */
export function createChannelGroup(options: GroupOptions = {}): DriverChannelGroup {
  const shared = options.sharedRx;
  if (shared !== undefined) {
    check(
      Number.isInteger(shared.frameCount) && shared.frameCount >= 1 && shared.frameCount <= 2 ** 20,
      `sharedRx.frameCount: expected 1..2^20, got ${shared.frameCount}`,
    );
  }
  // The queue takes a member index of its own.
  const capacity = (options.capacity ?? 1024) + (shared === undefined ? 0 : 1);
  return new DriverChannelGroup(options.transport ?? 'thread', capacity, shared);
}

/**
 * What a member does with each frame the group's shared receive queue holds for it: read it in place (the
 * frame goes back to the driver when this returns).
 */
export type SharedRxReceiver = (bytes: Uint8Array, offset: number, length: number) => void;

/** What a member of a {@link TaskChannelGroup} does when the driver marked it: drain its channel. */
export type GroupMemberService = () => void;

/** Options of {@link TaskChannelGroup.add}. */
export interface GroupPollerOptions {
  /**
   * Longest sleep, ms, before the poller services every member anyway (a safety net: the protocol loses no
   * wake-up, but a member whose driver ignores groups is still served). Default 50.
   */
  readonly sweepMs?: number;
  /**
   * Busy polling, µs (Linux's SO_BUSY_POLL): after a turn that found work, the poller keeps looking, one
   * event-loop turn at a time, for this long before it sleeps. While traffic keeps coming the driver then
   * finds the poller awake and pays no wake-up (a notify per publish, the largest per-publish cost at a few
   * million frames a second), at the price of the CPU the poller spends looking. Default 0: sleep at once.
   */
  readonly busyPollMicros?: number;
}

/**
 * The task side of a group in one thread: one poller for all the member channels this thread attached. It
 * sleeps on the group's one bell; when woken it takes each pending word with one atomic exchange and calls
 * the service function of each marked member, then looks again, and only when nothing is pending arms the
 * need-wakeup flag and sleeps. Obtain it with {@link joinChannelGroup}: every channel of one group attached
 * in this thread shares the same poller.
 */
export class TaskChannelGroup {
  readonly id: string;
  readonly capacity: number;
  /** Wake-ups by the bell so far: with traffic, one per batch the driver published, not one per datagram. */
  wakeups = 0;
  /** Sleeps that ended by the sweep timeout (every member is then served anyway). */
  timeouts = 0;
  /** Poller turns that found work. */
  turns = 0;
  /** Poller turns that found nothing while busy polling. */
  busyPolls = 0;
  readonly #words: Int32Array;
  readonly #pending: Int32Array;
  readonly #driverPending: Int32Array;
  readonly #doorbell: Doorbell;
  readonly #unmap: () => void;
  /** Holders: served members and attached channels (which post to the driver through the group). */
  #refs = 0;
  readonly #services: (GroupMemberService | undefined)[];
  #members = 0;
  #running: Promise<void> | undefined;
  #sweepMs = 50;
  #busyPollMs = 0;
  #keepAlive: NodeJS.Timeout | undefined;
  #closed = false;
  #unmapped = false;
  #asleep = false;
  #generation = 0;
  /** Every loop started, so the memory is unmapped only after all of them left their waits. */
  readonly #loops: Promise<void>[] = [];
  /** The shared receive queue as the handle names it; attached at the first {@link receiveShared}. */
  readonly #sharedHandle: SharedRxHandle | undefined;
  #shared: TaskChannel | undefined;
  /** Per member index: its receiver of shared-queue frames and the tag those frames carry. */
  readonly #receivers: (SharedRxReceiver | undefined)[];
  readonly #receiverTags: Uint32Array;
  /** Per shared-queue frame, the last view {@link sharedView} handed out. */
  #views: (Uint8Array | undefined)[] = [];
  /**
   * A frame being joined from several queue buffers (made at the first chain, the longest joinable): its
   * bytes so far (-1: none open), its tag.
   */
  #joined: Uint8Array | undefined;
  #chainLength = -1;
  #chainTag = 0;
  #chainFits = true;

  /** Use {@link joinChannelGroup}. */
  constructor(handle: GroupHandle) {
    let buffer: ArrayBufferLike;
    if (handle?.transport === 'thread' && handle.buffer instanceof SharedArrayBuffer) {
      buffer = handle.buffer;
      this.#doorbell = atomicsDoorbell;
      this.#unmap = () => {};
    } else if (handle?.transport === 'process' && typeof handle.name === 'string') {
      const shm = SharedMemory.open(handle.name);
      buffer = shm.buffer;
      this.#doorbell = futexDoorbell;
      this.#unmap = () => shm.close();
    } else {
      throw new IpcError('EXO_ERR_IPC_INVALID_ARGUMENT', 'group handle: expected { transport, id, buffer | name }');
    }
    const bad = (what: string) => new IpcError('EXO_ERR_IPC_BAD_LAYOUT', `group header: ${what}`);
    if (buffer.byteLength < GroupHeader.PENDING) throw bad('segment too small');
    const u32 = new Uint32Array(buffer, 0, 5);
    if (Atomics.load(u32, GroupHeader.MAGIC >> 2) !== GROUP_MAGIC) throw bad('magic is not "EXOG"');
    if (u32[GroupHeader.VERSION >> 2] !== GROUP_VERSION) throw bad(`version ${u32[GroupHeader.VERSION >> 2]}`);
    const capacity = u32[GroupHeader.CAPACITY >> 2];
    if (capacity % 32 !== 0 || capacity === 0 || groupBytes(capacity) > buffer.byteLength) throw bad('capacity');
    this.id = handle.id;
    this.capacity = capacity;
    this.#words = new Int32Array(buffer, 0, GroupHeader.PENDING >> 2);
    this.#pending = new Int32Array(buffer, GroupHeader.PENDING, capacity >> 5);
    this.#driverPending = new Int32Array(buffer, driverPendingOffset(capacity), capacity >> 5);
    this.#services = new Array(capacity).fill(undefined);
    const shared = handle.sharedRx;
    if (shared !== undefined) {
      if (!Number.isInteger(shared?.member) || shared.member < 0 || shared.member >= capacity) {
        throw bad('sharedRx: member out of range');
      }
      this.#sharedHandle = shared;
    }
    this.#receivers = new Array(shared === undefined ? 0 : capacity).fill(undefined);
    this.#receiverTags = new Uint32Array(shared === undefined ? 0 : capacity);
  }

  /** True when the driver puts the members' received frames in the group's shared receive queue. */
  get sharesRx(): boolean {
    return this.#sharedHandle !== undefined;
  }

  /**
   * Hands `receiver` every frame the group's shared receive queue holds for `membership` (a member channel's
   * {@link GroupMembership}), from now on; returns the function that stops it. The queue is attached by the
   * first call: a group's queue serves one thread, the one that hosts its members.
   * @throws IpcError EXO_ERR_IPC_INVALID_ARGUMENT when the group has no shared receive queue or the member
   * already has a receiver; EXO_ERR_IPC_CLOSED when another thread attached the queue
   */
  receiveShared(membership: GroupMembership, receiver: SharedRxReceiver): () => void {
    const shared = this.#sharedHandle;
    check(shared !== undefined, 'the group has no shared receive queue');
    const m = membership.member;
    check(Number.isInteger(m) && m >= 0 && m < this.capacity, `member: expected 0..${this.capacity - 1}`);
    check((membership.rxTag & TAG_MEMBER_MASK) === m, `rxTag ${membership.rxTag} does not name member ${m}`);
    check(this.#receivers[m] === undefined, `member ${m} already receives from the shared queue`);
    check(!this.#unmapped, 'the group is unmapped');
    if (this.#shared === undefined) {
      // Every frame is offered at once: the members' handlers give each back as soon as they return.
      const ch = attachChannel(shared!.channel, { rxBuffers: Number.POSITIVE_INFINITY });
      this.#shared = ch;
      this.#views = new Array(ch.layout.frameCount).fill(undefined);
    }
    this.#receivers[m] = receiver;
    this.#receiverTags[m] = membership.rxTag >>> 0;
    this.#wakeSelf();
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      if (this.#receivers[m] === receiver) this.#receivers[m] = undefined;
    };
  }

  /**
   * A view of what a receiver was handed (`bytes`, `offset`, `length`): for a frame in the queue's pool, one
   * reused while the lengths received in that frame stay the same (for handlers that take views: they must
   * not keep them); for a frame joined from several buffers, a view of the joining buffer.
   */
  sharedView(bytes: Uint8Array, offset: number, length: number): Uint8Array {
    const ch = this.#shared!;
    if (bytes !== ch.pool.bytes) return bytes.subarray(offset, offset + length);
    const index = ch.pool.indexOf(offset);
    let view = this.#views[index];
    if (view === undefined || view.length !== length) {
      view = ch.pool.frame(offset).subarray(0, length);
      this.#views[index] = view;
    }
    return view;
  }

  /**
   * Hands every frame in the shared receive queue to its member's receiver (frames whose tag names no current
   * receiver, left for a member that has gone, are dropped) and gives the frames back. Returns how many.
   */
  #drainShared(): number {
    const ch = this.#shared;
    if (ch === undefined) return 0;
    const bytes = ch.pool.bytes;
    const frameSize = ch.pool.frameSize;
    let n = 0;
    try {
      for (let off = ch.nextRx(); off >= 0; off = ch.nextRx()) {
        n++;
        const status = ch.status;
        const length = Math.min(ch.rxLength, frameSize);
        try {
          if (status === DescriptorStatus.OK && this.#chainLength < 0) this.#dispatch(bytes, off, length, ch.tag);
          else if (status === DescriptorStatus.OK || status === DescriptorStatus.MORE) {
            this.#chainPiece(bytes, off, length, ch.tag, status);
          }
          // Anything else is a buffer given back empty (a frame the queue had no room for): nothing to read.
        } finally {
          ch.postRx(off);
        }
      }
    } finally {
      if (n > 0) ch.flush();
    }
    return n;
  }

  /** Hands one frame to the receiver its tag names, if that receiver is current (see {@link receiveShared}). */
  #dispatch(bytes: Uint8Array, offset: number, length: number, tag: number): void {
    const m = tag & TAG_MEMBER_MASK;
    const receiver = m < this.#receivers.length && this.#receiverTags[m] === tag ? this.#receivers[m] : undefined;
    if (receiver === undefined) return;
    try {
      receiver(bytes, offset, length);
    } catch (err) {
      rethrowLater(err);
    }
  }

  /**
   * Joins a frame the driver spread over several buffers (every piece but the last has status MORE, all carry
   * the frame's tag) in a buffer of the group's, then hands it over. The driver writes a frame's pieces one
   * after the other; a piece with another tag while a frame is open would mean the open one never ended:
   * it is dropped, and so is a frame longer than {@link MAX_JOINED} bytes.
   */
  #chainPiece(bytes: Uint8Array, offset: number, length: number, tag: number, status: number): void {
    if (this.#chainLength < 0 || tag !== this.#chainTag) {
      this.#chainLength = 0;
      this.#chainTag = tag;
      this.#chainFits = true;
    }
    this.#joined ??= new Uint8Array(MAX_JOINED);
    const joined = this.#joined;
    const end = this.#chainLength + length;
    if (end > MAX_JOINED) this.#chainFits = false;
    else if (this.#chainFits) {
      joined.set(bytes.subarray(offset, offset + length), this.#chainLength);
      this.#chainLength = end;
    }
    if (status === DescriptorStatus.MORE) return;
    const joinedLength = this.#chainLength;
    this.#chainLength = -1;
    if (this.#chainFits) this.#dispatch(joined, 0, joinedLength, tag);
  }

  /** Busy polling after work, µs (see {@link GroupPollerOptions.busyPollMicros}); settable at run time. */
  get busyPollMicros(): number {
    return this.#busyPollMs * 1000;
  }

  set busyPollMicros(micros: number) {
    this.#busyPollMs = busyPollMs(micros);
  }

  /** True while the poller sleeps on the bell (nothing was pending when it last looked). */
  get sleeping(): boolean {
    return this.#asleep;
  }

  /** Members served by this poller. */
  get size(): number {
    return this.#members;
  }

  /**
   * Serves `member` with `service` from now on (starting the poller if it was idle); returns the function
   * that stops serving it. When the last member leaves, the poller stops and the group is unmapped.
   * @throws IpcError EXO_ERR_IPC_INVALID_ARGUMENT for a member index out of range or already served
   */
  add(member: number, service: GroupMemberService, options: GroupPollerOptions = {}): () => void {
    check(
      Number.isInteger(member) && member >= 0 && member < this.capacity,
      `member: expected 0..${this.capacity - 1}`,
    );
    check(this.#services[member] === undefined, `member ${member} is already served`);
    // Checked before anything changes: a refused option leaves the member unserved.
    const busyMs = options.busyPollMicros === undefined ? this.#busyPollMs : busyPollMs(options.busyPollMicros);
    check(!this.#unmapped, 'the group is unmapped');
    if (this.#closed) {
      // The poller stopped with its last member but channels kept the group: start a new loop (the old one
      // sees that its generation ended and leaves).
      this.#closed = false;
      this.#generation++;
      this.#running = undefined;
    }
    this.#services[member] = service;
    this.#members++;
    this.#refs++;
    if (options.sweepMs !== undefined) this.#sweepMs = Math.max(1, options.sweepMs);
    this.#busyPollMs = busyMs;
    // A pending Atomics.waitAsync does not keep a thread alive; like an open socket, a served channel does.
    this.#keepAlive ??= setInterval(() => {}, 1 << 30);
    if (this.#running === undefined) {
      this.#running = this.#run(this.#generation);
      this.#loops.push(this.#running);
    }
    // Whatever arrived before the member was served is looked at on the next turn.
    this.#wakeSelf();
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#services[member] = undefined;
      this.#members--;
      if (this.#members === 0) this.#stopPoller();
      this.release();
    };
  }

  /** Holds the group's memory mapped (an attached channel does, to {@link postDriver}); see {@link release}. */
  retain(): void {
    check(this.#refs >= 0 && !this.#unmapped, 'the group is unmapped');
    this.#refs++;
  }

  /** Drops a hold: the last one removes the group from this thread and unmaps it. */
  release(): void {
    if (--this.#refs > 0) return;
    groups.delete(this.id);
    this.#stopPoller();
    this.#unmapped = true;
    this.#shared?.close();
    this.#shared = undefined;
    // The memory stays mapped until the loops left their waits (the addon's wait reads the word).
    const loops = this.#loops;
    if (loops.length === 0) this.#unmap();
    else void Promise.all(loops).then(() => this.#unmap());
  }

  /**
   * Marks `member` in the driver pending bitmap: call after publishing a request or frames to send (after,
   * so the driver, which clears the bit before draining, cannot miss them).
   */
  postDriver(member: number): void {
    if (this.#unmapped || member < 0 || member >= this.capacity) return;
    const bit = 1 << (member & 31);
    const w = member >> 5;
    if ((Atomics.load(this.#driverPending, w) & bit) === 0) Atomics.or(this.#driverPending, w, bit);
  }

  /** Services every marked member once; returns how many were marked. Exposed for tests and custom loops. */
  drain(): number {
    return takeMarked(this.#pending, this.#serveMember);
  }

  readonly #serveMember = (m: number): void => {
    if (m === this.#sharedHandle?.member) this.#drainShared();
    else serve(this.#services[m]);
  };

  /** Services every member, marked or not, and drains the shared receive queue. */
  sweep(): void {
    const services = this.#services;
    for (let m = 0; m < services.length; m++) serve(services[m]);
    this.#drainShared();
  }

  #anyPending(): boolean {
    const pending = this.#pending;
    for (let w = 0; w < pending.length; w++) if (Atomics.load(pending, w) !== 0) return true;
    return false;
  }

  #wakeSelf(): void {
    ring(this.#doorbell, { words: this.#words, index: GroupHeader.TASK_BELL >> 2 });
  }

  async #run(generation: number): Promise<void> {
    const words = this.#words;
    const W = GroupHeader.TASK_WAITING >> 2;
    const B = GroupHeader.TASK_BELL >> 2;
    let lastWork = 0;
    while (!this.#closed && generation === this.#generation) {
      if (this.drain() > 0) {
        this.turns++;
        if (this.#busyPollMs > 0) lastWork = performance.now();
        // Let the rest of the event loop (timers, other I/O) run between batches.
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      // Busy polling: while work came recently, look again after an event-loop turn instead of sleeping, so
      // the driver finds the poller awake and has no wake-up to pay for (Linux's SO_BUSY_POLL).
      if (this.#busyPollMs > 0 && performance.now() - lastWork < this.#busyPollMs) {
        this.busyPolls++;
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      // The wake-up protocol of docs/ipc-layout.md: bell snapshot, arm, re-check, sleep while the bell holds.
      const seq = Atomics.load(words, B);
      Atomics.store(words, W, 1);
      if (this.#anyPending() || this.#closed) {
        Atomics.store(words, W, 0);
        continue;
      }
      this.#asleep = true;
      const r = await this.#doorbell.waitAsync(words, B, seq, this.#sweepMs);
      this.#asleep = false;
      if (this.#closed || generation !== this.#generation) break;
      Atomics.store(words, W, 0);
      if (r === 'timed-out') {
        this.timeouts++;
        this.sweep();
      } else this.wakeups++;
    }
  }

  #stopPoller(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeSelf();
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }
}

/**
 * Calls one member's service. A service that throws must not stop the poller the other members depend on:
 * its error is rethrown on its own, as an uncaught exception of this thread (what it was before groups).
 */
function serve(service: GroupMemberService | undefined): void {
  if (service === undefined) return;
  try {
    service();
  } catch (err) {
    rethrowLater(err);
  }
}

/**
 * Rethrows a member's error on its own, as an uncaught exception of this thread, after the poller's turn:
 * one member's failing service or receiver must not stop the others.
 */
function rethrowLater(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}

/** The pollers of this thread, by group id. */
const groups = new Map<string, TaskChannelGroup>();

/**
 * The poller of `handle`'s group in this thread: created on first use, shared by every later member, ended
 * when its last member leaves.
 */
export function joinChannelGroup(handle: GroupHandle): TaskChannelGroup {
  let g = groups.get(handle?.id);
  if (g === undefined) {
    g = new TaskChannelGroup(handle);
    groups.set(g.id, g);
  }
  return g;
}
