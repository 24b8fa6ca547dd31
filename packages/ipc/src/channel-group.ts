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
import { check, IpcError } from './errors.ts';
import { ring } from './ring.ts';
import { futexDoorbell, SharedMemory } from './shm.ts';

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

/** What the driver hands the task side of a group (inside each member's channel handle). */
export type GroupHandle =
  | { readonly transport: 'thread'; readonly id: string; readonly buffer: SharedArrayBuffer }
  | { readonly transport: 'process'; readonly id: string; readonly name: string };

/** A channel's place in a group, carried by its {@link ChannelHandle}. */
export interface GroupMembership {
  readonly group: GroupHandle;
  /** The member index: the channel's bit in the pending bitmap. */
  readonly member: number;
}

/** Options of {@link createChannelGroup}. */
export interface GroupOptions {
  /** 'thread' (SharedArrayBuffer) or 'process' (POSIX shared memory), as the member channels. Default thread. */
  readonly transport?: 'thread' | 'process';
  /** Most members at once. Default 1024. */
  readonly capacity?: number;
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
  #members = 0;
  #next = 0;
  #closed = false;

  /** Use {@link createChannelGroup}. */
  constructor(transport: 'thread' | 'process', capacity: number) {
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
    this.#members++;
    return m;
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
    this.wake();
    this.#closed = true;
    this.unlinkName();
    this.#shm?.close();
  }
}

/** Creates a channel group (driver side); pass it as `group` to createChannel for each member channel. */
export function createChannelGroup(options: GroupOptions = {}): DriverChannelGroup {
  return new DriverChannelGroup(options.transport ?? 'thread', options.capacity ?? 1024);
}

/** What a member of a {@link TaskChannelGroup} does when the driver marked it: drain its channel. */
export type GroupMemberService = () => void;

/** Options of {@link TaskChannelGroup.add}. */
export interface GroupPollerOptions {
  /**
   * Longest sleep, ms, before the poller services every member anyway (a safety net: the protocol loses no
   * wake-up, but a member whose driver ignores groups is still served). Default 50.
   */
  readonly sweepMs?: number;
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
  #keepAlive: NodeJS.Timeout | undefined;
  #closed = false;
  #unmapped = false;
  #asleep = false;
  #generation = 0;
  /** Every loop started, so the memory is unmapped only after all of them left their waits. */
  readonly #loops: Promise<void>[] = [];

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

  readonly #serveMember = (m: number): void => serve(this.#services[m]);

  /** Services every member, marked or not. */
  sweep(): void {
    const services = this.#services;
    for (let m = 0; m < services.length; m++) serve(services[m]);
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
    while (!this.#closed && generation === this.#generation) {
      if (this.drain() > 0) {
        this.turns++;
        // Let the rest of the event loop (timers, other I/O) run between batches.
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
    process.nextTick(() => {
      throw err;
    });
  }
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
