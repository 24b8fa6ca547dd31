import type { DriverChannelGroup } from './channel-group.ts';
import { copyWords, wordViewOf } from './copy-words.ts';
import { check, IpcError } from './errors.ts';
import {
  ChannelHeader,
  type ChannelLayout,
  ChannelState,
  channelLayout,
  Descriptor,
  DescriptorStatus,
  isPowerOfTwo,
  RingId,
} from './layout.ts';
import { native } from './native.ts';
import { PacketPool } from './pool.ts';
import type { RingConsumer, RingProducer } from './ring.ts';
import { sleepUntil, sleepUntilAsync } from './ring.ts';
import {
  type ChannelHandle,
  type ControlMessage,
  createSegment,
  initSegment,
  openRings,
  type RingSet,
  readControl,
  type Segment,
  writeControl,
} from './segment.ts';
import { SharedMemory } from './shm.ts';

/** Options of {@link createChannel}. */
export interface ChannelOptions {
  /** 'thread': a SharedArrayBuffer for a worker thread; 'process': POSIX shared memory for another process. */
  readonly transport?: 'thread' | 'process';
  /** Bytes per frame, a power of two >= 64. Default 2048 (a full Ethernet frame fits). */
  readonly frameSize?: number;
  /** Frames in the channel's pool. Default 256. The packet rings hold them all, so they can never overflow. */
  readonly frameCount?: number;
  /** Slots of each control ring, a power of two. Default 16. */
  readonly controlCapacity?: number;
  /** Protocol violations tolerated before the task is disconnected. Default 16. */
  readonly maxErrors?: number;
  /** Polls before sleeping in waits (busy-poll mode). Default 0. */
  readonly spin?: number;
  /** POSIX shared memory name (process transport). Default: a fresh unique name. */
  readonly name?: string;
  /** Told once when the task is disconnected, with the reason. */
  readonly onDisconnect?: (reason: string) => void;
  /**
   * The group whose one doorbell wakes the task side (several tasks in one event loop): the channel takes a
   * member index, its handle carries the membership, and every publish towards the task marks it pending
   * in the group instead of ringing a bell of its own. Same transport as the channel.
   */
  readonly group?: DriverChannelGroup;
}

/** Who holds a frame, as the driver's private table says (never as anything in shared memory says). */
export const FrameOwner = {
  /** The task: the driver may not touch it until the task hands it over on rx.free or tx.active. */
  TASK: 0,
  /** The driver, received on rx.free: it goes back to the task only on rx.active. */
  DRIVER_RX: 1,
  /** The driver, received on tx.active: it goes back to the task only on tx.free. */
  DRIVER_TX: 2,
  /** Taken back after the task was disconnected. */
  RECLAIMED: 3,
} as const;

/** Kinds of protocol violation by a task, counted separately. */
export const Violation = {
  /** Offset outside the pool or not at a frame start. */
  BAD_OFFSET: 0,
  /** Length of zero or larger than a frame. */
  BAD_LENGTH: 1,
  /** A frame the task does not hold: returned twice, or never had. */
  NOT_OWNED: 2,
  /** A ring index that cannot be (the task scribbled over the ring header). */
  RING_CORRUPT: 3,
  /** A control message with an impossible length. */
  BAD_CONTROL: 4,
} as const;
const VIOLATION_NAMES = ['badOffset', 'badLength', 'notOwned', 'ringCorrupt', 'badControl'] as const;

/**
 * The driver's (trusted) end of a channel: the rings between it and one task, the task's packet pool, and a
 * private ownership table of every frame. Everything read from the task's rings is copied out of shared
 * memory, then validated against that table; violations are counted and, past `maxErrors`, disconnect the
 * task. Nothing the task writes can make these methods throw or touch another channel's memory.
 *
 * Typical loop: `takeRxBuffer` + copy + `deliverRx` for each received packet, `nextTx` + `completeTx` for each
 * packet to send, then one `flush()` per batch (one atomic publish per ring), and `work()` to sleep when idle.
 */
export class DriverChannel {
  /** Give this to the task: `attachChannel(handle)` on its side. */
  readonly handle: ChannelHandle;
  /** The task's packet memory. */
  readonly pool: PacketPool;
  readonly layout: ChannelLayout;
  /** Protocol violations so far. */
  errors = 0;
  /** Why the task was disconnected, or '' while connected. */
  disconnectReason = '';
  /** Length of the descriptor last returned by {@link nextTx}. */
  txLength = 0;
  /** Tag of the descriptor last returned by {@link nextTx}. */
  txTag = 0;

  private readonly segment: Segment;
  private readonly spin: number;
  private readonly rings: RingSet;
  private readonly rxFree: RingConsumer;
  private readonly rxActive: RingProducer;
  private readonly txActive: RingConsumer;
  private readonly txFree: RingProducer;
  private readonly ctlRequest: RingConsumer;
  private readonly ctlResponse: RingProducer;
  private readonly owner: Uint8Array;
  private readonly owned = new Int32Array(4);
  /** The frames of one {@link receiveChain}, reused. */
  private chain = new Int32Array(4);
  /** Tag of each frame taken for transmit, echoed in its completion. */
  private readonly txTags: Uint32Array;
  private readonly violations = new Uint32Array(VIOLATION_NAMES.length);
  private readonly one = new Uint32Array(Descriptor.WORDS);
  private readonly state: Int32Array;
  private readonly maxErrors: number;
  private readonly onDisconnect?: (reason: string) => void;
  private unmapped = false;
  private nameUnlinked = false;
  /** The whole segment as words (the receive fast path copies through it), and the pool's shape as numbers. */
  private readonly poolWords: Int32Array;
  private readonly poolBase: number;
  private readonly poolBytes: number;
  private readonly frameMask: number;
  private readonly frameShift: number;
  /** The task's "posted" flag (ChannelHeader.TASK_POSTED). */
  private readonly posted: Int32Array;
  private readonly group: DriverChannelGroup | undefined;
  /** This channel's member index in {@link channelGroup}, or -1. */
  readonly member: number;
  /** The tag of this channel's frames in its group's shared receive queue (GroupMembership.rxTag), or 0. */
  readonly rxTag: number;

  /** The channel group this channel is a member of, if any. */
  get channelGroup(): DriverChannelGroup | undefined {
    return this.group;
  }

  /** Use {@link createChannel}. */
  constructor(segment: Segment, layout: ChannelLayout, options: ChannelOptions) {
    this.segment = segment;
    this.layout = layout;
    this.group = options.group;
    this.member = this.group === undefined ? -1 : this.group.join();
    this.rxTag = this.group === undefined ? 0 : this.group.rxTag(this.member);
    this.handle =
      this.group === undefined
        ? segment.handle
        : { ...segment.handle, group: { group: this.group.handle, member: this.member, rxTag: this.rxTag } };
    this.posted = new Int32Array(segment.buffer, ChannelHeader.TASK_POSTED, 1);
    this.poolWords = new Int32Array(segment.buffer, 0, segment.buffer.byteLength >>> 2);
    this.poolBase = layout.poolOffset;
    this.poolBytes = layout.frameSize * layout.frameCount;
    this.frameMask = layout.frameSize - 1;
    this.frameShift = Math.log2(layout.frameSize);
    this.pool = new PacketPool(segment.buffer, layout.poolOffset, layout.frameSize, layout.frameCount);
    this.spin = options.spin ?? 0;
    this.rings = openRings(segment, layout, 'driver', this.spin);
    this.rxFree = this.rings.consumers[RingId.RX_FREE]!;
    this.rxActive = this.rings.producers[RingId.RX_ACTIVE]!;
    this.txActive = this.rings.consumers[RingId.TX_ACTIVE]!;
    this.txFree = this.rings.producers[RingId.TX_FREE]!;
    this.ctlRequest = this.rings.consumers[RingId.CTL_REQUEST]!;
    this.ctlResponse = this.rings.producers[RingId.CTL_RESPONSE]!;
    this.owner = new Uint8Array(layout.frameCount); // all FrameOwner.TASK: the task starts with every frame
    this.owned[FrameOwner.TASK] = layout.frameCount;
    this.txTags = new Uint32Array(layout.frameCount);
    this.state = new Int32Array(segment.buffer, ChannelHeader.STATE, 1);
    this.maxErrors = options.maxErrors ?? 16;
    this.onDisconnect = options.onDisconnect;
  }

  /**
   * True until the task is disconnected or closes its end. Noticing that the task closed its end (or that
   * anything but the driver wrote a closed state) disconnects it, which reclaims its frames.
   */
  get connected(): boolean {
    if (this.disconnectReason !== '') return false;
    if (Atomics.load(this.state, 0) <= ChannelState.ATTACHED) return true;
    this.disconnect('the task closed the channel');
    return false;
  }

  /** True once a task attached. */
  get attached(): boolean {
    return Atomics.load(this.state, 0) !== ChannelState.CREATED;
  }

  /** Frames per owner, from the driver's own table. Their sum is always `frameCount`. */
  ownership(): { task: number; driverRx: number; driverTx: number; reclaimed: number } {
    const o = this.owned;
    return { task: o[0], driverRx: o[1], driverTx: o[2], reclaimed: o[3] };
  }

  /** Violations by kind. */
  violationCounts(): Record<(typeof VIOLATION_NAMES)[number], number> {
    return Object.fromEntries(VIOLATION_NAMES.map((n, i) => [n, this.violations[i]])) as Record<
      (typeof VIOLATION_NAMES)[number],
      number
    >;
  }

  private violation(kind: number): void {
    this.violations[kind]++;
    this.errors++;
    if (kind === Violation.RING_CORRUPT) this.disconnect('a ring index written by the task is impossible');
    else if (this.errors > this.maxErrors) this.disconnect(`more than ${this.maxErrors} protocol violations`);
  }

  private checkCorrupt(ring: RingConsumer | RingProducer): void {
    if (ring.corrupt && this.disconnectReason === '') this.violation(Violation.RING_CORRUPT);
  }

  private move(index: number, from: number, to: number): void {
    this.owner[index] = to;
    this.owned[from]--;
    this.owned[to]++;
  }

  /**
   * An empty frame the task offered for receiving (rx.free), now the driver's: its pool offset, or -1 if the
   * task offered none (drop the packet: a slow task only starves itself). Invalid offers are counted and skipped.
   */
  takeRxBuffer(): number {
    while (this.disconnectReason === '') {
      if (!this.rxFree.pop(this.one)) {
        this.checkCorrupt(this.rxFree);
        return -1;
      }
      const offset = this.one[Descriptor.OFFSET];
      const index = this.pool.indexOf(offset);
      if (index < 0) this.violation(Violation.BAD_OFFSET);
      else if (this.owner[index] !== FrameOwner.TASK) this.violation(Violation.NOT_OWNED);
      else {
        this.move(index, FrameOwner.TASK, FrameOwner.DRIVER_RX);
        return offset;
      }
    }
    return -1;
  }

  /**
   * Gives a frame taken with {@link takeRxBuffer}, now holding a received packet, to the task (rx.active),
   * visible at the next {@link flush}. After a disconnect the frame is reclaimed instead and false returned;
   * false also if the task's ring is full (only possible if it broke the protocol): the frame stays the driver's.
   * @throws IpcError EXO_ERR_IPC_NOT_OWNER if the driver does not hold that frame for receiving (a driver bug)
   */
  deliverRx(offset: number, length: number, tag = 0, status: number = DescriptorStatus.OK): boolean {
    const index = this.ownedIndex(offset, FrameOwner.DRIVER_RX, 'rx');
    if (this.disconnectReason !== '') {
      this.move(index, FrameOwner.DRIVER_RX, FrameOwner.RECLAIMED);
      return false;
    }
    // The message is built only on failure: this runs once per received frame.
    if (!(length >= 0 && length <= this.pool.frameSize)) {
      check(false, `length: expected 0..${this.pool.frameSize}, got ${length}`);
    }
    // Full only if the task broke the protocol (the ring holds every frame of the pool): the frame then stays
    // the driver's, to deliver later or give back some other way.
    if (!this.rxActive.push(offset, length, tag, status)) {
      this.checkCorrupt(this.rxActive);
      if (this.disconnectReason !== '') this.move(index, FrameOwner.DRIVER_RX, FrameOwner.RECLAIMED);
      return false;
    }
    this.move(index, FrameOwner.DRIVER_RX, FrameOwner.TASK);
    return true;
  }

  /**
   * The receive fast path: takes the next empty frame the task offered, copies `length` bytes into it word by
   * word from `src` (an Int32 view of the source's whole buffer) at byte `srcByteOffset`, and delivers it
   * (visible at the next {@link flush}). The frame goes from the task and back to it in one step, so the
   * ownership table does not change; the offered descriptor is still read once and validated like
   * {@link takeRxBuffer} does. Requires `srcByteOffset` 4-aligned, `length` <= the frame size and `src`
   * readable up to the next word boundary past `length` (the last word is copied whole; the frame has room).
   * Returns false if the task had no valid empty frame (the packet is dropped for it only) or is gone.
   * `tag` goes into the descriptor (a shared receive queue's member tag).
   */
  receiveWords(src: Int32Array, srcByteOffset: number, length: number, tag = 0): boolean {
    const ring = this.rxFree;
    while (this.disconnectReason === '') {
      const at = ring.peek();
      if (at < 0) {
        this.checkCorrupt(ring);
        return false;
      }
      // One read of the task's word: what is validated is what is used (as PacketPool.indexOf checks it).
      const offset = ring.slots[at];
      if (offset >= this.poolBytes || (offset & this.frameMask) !== 0) {
        this.violation(Violation.BAD_OFFSET);
        continue;
      }
      const index = offset >>> this.frameShift;
      if (this.owner[index] !== FrameOwner.TASK) {
        this.violation(Violation.NOT_OWNED);
        continue;
      }
      copyWords(this.poolWords, (this.poolBase + offset) >>> 2, src, srcByteOffset >>> 2, (length + 3) >>> 2);
      if (!this.rxActive.push(offset, length, tag, DescriptorStatus.OK)) {
        // Full only if the task broke the protocol (the ring holds every frame of the pool): the frame stays
        // the driver's, as deliverRx would keep it.
        this.move(index, FrameOwner.TASK, FrameOwner.DRIVER_RX);
        this.checkCorrupt(this.rxActive);
        if (this.disconnectReason !== '') this.move(index, FrameOwner.DRIVER_RX, FrameOwner.RECLAIMED);
        return false;
      }
      return true;
    }
    return false;
  }

  /**
   * Delivers `length` bytes of `packet` in as many offered frames as it takes, in ring order: every piece but
   * the last with status MORE, the last with OK, all with `tag` (the receiver joins them). The frames are
   * all taken before any is filled: when the task offered too few, the ones taken go back at once, empty
   * (length 0, status INVALID), and false is returned, so a partial frame never reaches the task. Used by a
   * group's shared receive queue, whose small frames keep the queue's pool within a few pages of the TLB.
   */
  receiveChain(packet: Uint8Array, length: number, tag: number): boolean {
    const size = this.pool.frameSize;
    const pieces = Math.ceil(length / size);
    if (pieces === 0) return false;
    if (this.chain.length < pieces) this.chain = new Int32Array(Math.max(pieces, this.chain.length * 2));
    const chain = this.chain;
    let taken = 0;
    for (; taken < pieces; taken++) {
      const offset = this.takeRxBuffer();
      if (offset < 0) break;
      chain[taken] = offset;
    }
    if (taken < pieces) {
      for (let i = 0; i < taken; i++) this.deliverRx(chain[i], 0, tag, DescriptorStatus.INVALID);
      return false;
    }
    // Word copies when the source allows them (aligned, readable to the word past the end): no view to make
    // per piece. Otherwise one `set` per piece.
    const at = packet.byteOffset;
    const src =
      (at & 3) === 0 && at + ((length + 3) & ~3) <= packet.buffer.byteLength ? wordViewOf(packet.buffer) : null;
    for (let i = 0; i < pieces; i++) {
      const from = i * size;
      const n = Math.min(size, length - from);
      if (src !== null) {
        copyWords(this.poolWords, (this.poolBase + chain[i]) >>> 2, src, (at + from) >>> 2, (n + 3) >>> 2);
      } else this.pool.bytes.set(packet.subarray(from, from + n), chain[i]);
      if (!this.deliverRx(chain[i], n, tag, i < pieces - 1 ? DescriptorStatus.MORE : DescriptorStatus.OK)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Copies a received packet into a frame the task offered and delivers it; false if the task had no empty
   * frame (the packet is dropped for this task only) or is disconnected.
   */
  receive(packet: Uint8Array, tag = 0): boolean {
    // No room to deliver (a task that stopped reading): drop before taking a frame.
    if (this.rxActive.ready(1) === 0) return false;
    const offset = this.takeRxBuffer();
    if (offset < 0) return false;
    const length = Math.min(packet.length, this.pool.frameSize);
    this.pool.bytes.set(length === packet.length ? packet : packet.subarray(0, length), offset);
    return this.deliverRx(
      offset,
      length,
      tag,
      length === packet.length ? DescriptorStatus.OK : DescriptorStatus.TRUNCATED,
    );
  }

  /**
   * The next frame the task asked to transmit (tx.active), validated and now the driver's: its pool offset,
   * with {@link txLength} and {@link txTag} set; -1 if none. A frame the task holds but with an impossible
   * length is handed straight back with status INVALID (and counted).
   */
  nextTx(): number {
    while (this.disconnectReason === '') {
      if (!this.txActive.pop(this.one)) {
        this.checkCorrupt(this.txActive);
        return -1;
      }
      const offset = this.one[Descriptor.OFFSET];
      const length = this.one[Descriptor.LENGTH];
      const index = this.pool.indexOf(offset);
      if (index < 0) this.violation(Violation.BAD_OFFSET);
      else if (this.owner[index] !== FrameOwner.TASK) this.violation(Violation.NOT_OWNED);
      else {
        this.move(index, FrameOwner.TASK, FrameOwner.DRIVER_TX);
        if (length === 0 || length > this.pool.frameSize) {
          this.violation(Violation.BAD_LENGTH);
          // If even that does not fit (the task does not drain its completions), the task loses the frame.
          const back = this.completeTx(offset, DescriptorStatus.INVALID);
          if (!back && (this.owner[index] as number) === FrameOwner.DRIVER_TX) {
            this.move(index, FrameOwner.DRIVER_TX, FrameOwner.RECLAIMED);
          }
          continue;
        }
        this.txLength = length;
        this.txTag = this.one[Descriptor.TAG];
        this.txTags[index] = this.txTag;
        return offset;
      }
    }
    return -1;
  }

  /**
   * Gives a frame taken with {@link nextTx} back to the task (tx.free) with a status (sent, denied...),
   * visible at the next {@link flush}. After a disconnect the frame is reclaimed instead and false returned;
   * false also if the task's ring is full (only possible if it broke the protocol): the frame stays the driver's.
   * @throws IpcError EXO_ERR_IPC_NOT_OWNER if the driver does not hold that frame for transmitting
   */
  completeTx(offset: number, status: number = DescriptorStatus.OK): boolean {
    const index = this.ownedIndex(offset, FrameOwner.DRIVER_TX, 'tx');
    if (this.disconnectReason !== '') {
      this.move(index, FrameOwner.DRIVER_TX, FrameOwner.RECLAIMED);
      return false;
    }
    // As for deliverRx: full only if the task broke the protocol; the frame stays the driver's.
    if (!this.txFree.push(offset, 0, this.txTags[index], status)) {
      this.checkCorrupt(this.txFree);
      if (this.disconnectReason !== '') this.move(index, FrameOwner.DRIVER_TX, FrameOwner.RECLAIMED);
      return false;
    }
    this.move(index, FrameOwner.DRIVER_TX, FrameOwner.TASK);
    return true;
  }

  private ownedIndex(offset: number, owner: number, what: string): number {
    const index = this.pool.indexOf(offset >>> 0);
    if (index < 0 || this.owner[index] !== owner) {
      throw new IpcError('EXO_ERR_IPC_NOT_OWNER', `frame at offset ${offset} is not held by the driver for ${what}`);
    }
    return index;
  }

  /**
   * Makes everything staged visible: one atomic publish per ring, a wake-up only if the task asked for one.
   * In a group, `wakeGroup` false only marks the channel pending: the caller then calls the group's kick()
   * once after flushing all the channels of its turn (the wake-up protocol holds as long as the kick follows).
   */
  flush(wakeGroup = true): void {
    if (this.disconnectReason !== '') return;
    // Once the task is attached nobody needs the name any more: removing it now means no segment outlives a
    // driver that crashes.
    if (!this.nameUnlinked && Atomics.load(this.state, 0) !== ChannelState.CREATED) this.unlinkName();
    // Release before publish: a frame handed back must find the slot it left by already free, which is what
    // keeps rings sized to the pool from ever overflowing.
    this.rxFree.release();
    this.txActive.release();
    const toTask = this.group !== undefined && (this.rxActive.staged > 0 || this.txFree.staged > 0);
    this.rxActive.publish();
    this.txFree.publish();
    // After publishing (docs/ipc-layout.md, "Channel group"): the task's poller either sees the bit or sleeps
    // with its flag armed, which post() reads.
    if (toTask) {
      if (wakeGroup) this.group!.post(this.member);
      else this.group!.mark(this.member);
    }
    this.checkCorrupt(this.rxActive);
    this.checkCorrupt(this.txFree);
  }

  /**
   * True if the task announced work since the last call (its "posted" flag), clearing the flag first: whatever
   * the task publishes afterwards sets it again, so calling this before draining its rings misses nothing. A
   * task that never sets the flag (an older peer) is still served by the caller's periodic full sweep.
   */
  takePosted(): boolean {
    if (this.unmapped || Atomics.load(this.posted, 0) === 0) return false;
    Atomics.store(this.posted, 0, 0);
    return true;
  }

  /** The next control request (copied out), or undefined. A malformed one is counted and skipped. */
  readRequest(): ControlMessage | undefined {
    while (this.disconnectReason === '') {
      const m = readControl(this.ctlRequest);
      if (m === undefined) {
        this.checkCorrupt(this.ctlRequest);
        return undefined;
      }
      if (m === null) this.violation(Violation.BAD_CONTROL);
      else return m;
    }
    return undefined;
  }

  /** Sends a control response; false if the task does not drain its responses (its ring is full) or is gone. */
  respond(message: ControlMessage): boolean {
    if (this.disconnectReason !== '') return false;
    const ok = writeControl(this.ctlResponse, message);
    if (ok && this.group !== undefined) this.group.post(this.member);
    this.checkCorrupt(this.ctlResponse);
    return ok;
  }

  /**
   * True if the task left work: frames to send or control requests. Empty frames offered for receiving are
   * not work: the driver takes them when packets arrive.
   */
  hasWork(): boolean {
    return this.txActive.ready(1) > 0 || this.ctlRequest.ready(1) > 0;
  }

  /** Empty frames the task offered for receiving that the driver has not taken yet (an upper bound). */
  rxBuffersOffered(): number {
    return this.rxFree.ready(1);
  }

  private readonly workDone = () => !this.connected || this.hasWork();
  private readonly arm = () => {
    this.txActive.arm();
    this.ctlRequest.arm();
  };
  private readonly disarm = () => {
    this.txActive.disarm();
    this.ctlRequest.disarm();
  };

  /**
   * Blocks until the task leaves work (true) or the channel closes or `timeoutMs` passes (false). Sleeps in
   * the kernel, waking only when the task rings the driver's bell, which it does only because we asked.
   */
  waitWork(timeoutMs = Number.POSITIVE_INFINITY): boolean {
    if (this.unmapped) return false;
    this.flush();
    for (let i = 0; i < this.spin; i++) if (this.workDone()) return this.connected && this.hasWork();
    sleepUntil(this.segment.doorbell, this.rings.bell, this.workDone, this.arm, this.disarm, timeoutMs);
    return this.connected && this.hasWork();
  }

  /** {@link waitWork} without blocking the event loop. */
  async work(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (this.unmapped) return false;
    this.flush();
    for (let i = 0; i < this.spin; i++) if (this.workDone()) return this.connected && this.hasWork();
    await sleepUntilAsync(this.segment.doorbell, this.rings.bell, this.workDone, this.arm, this.disarm, timeoutMs);
    return this.connected && this.hasWork();
  }

  /**
   * Ends the task's use of the channel: marks it closed, wakes the task so it notices, and reclaims every frame
   * the task held. Frames the driver still holds are reclaimed when it hands them back. Idempotent.
   */
  disconnect(reason: string): void {
    if (this.disconnectReason !== '') return;
    this.disconnectReason = reason;
    if (!this.unmapped) {
      Atomics.store(this.state, 0, ChannelState.DRIVER_CLOSED);
      this.rxActive.wakePeer();
      this.group?.post(this.member);
    }
    for (let i = 0; i < this.owner.length; i++) {
      if (this.owner[i] === FrameOwner.TASK) this.move(i, FrameOwner.TASK, FrameOwner.RECLAIMED);
    }
    this.onDisconnect?.(reason);
  }

  /** The task is known dead (its process exited, its worker stopped): disconnect and reclaim. */
  taskExited(detail = 'the task exited'): void {
    this.disconnect(detail);
  }

  /**
   * Watches a task process and disconnects (reclaiming every frame) when it exits, kill -9 included. Uses a
   * pidfd (Linux >= 5.3: noticed at once, zombie or not, immune to pid reuse) through the addon, which waits
   * in a thread of its own without keeping the event loop alive; falls back to polling `kill(pid, 0)` every
   * `pollMs` on an unref'd timer. Returns a function that stops watching. A driver that started the process
   * itself may instead call {@link taskExited} from the child's 'exit' event.
   */
  watchProcess(pid: number, pollMs = 50): () => void {
    let stopped = false;
    const stop = () => {
      stopped = true;
    };
    const why = `task process ${pid} exited`;
    let fd = -1;
    try {
      fd = native().pidfdOpen(pid);
    } catch {
      return this.pollProcess(pid, pollMs, why);
    }
    const watch = async () => {
      try {
        while (!stopped && this.disconnectReason === '') {
          const r = await native().pidfdWaitAsync(fd, 1000);
          if (r === 0) {
            if (!stopped) this.taskExited(why);
            return;
          }
          if (r < 0) {
            if (!stopped) this.pollProcess(pid, pollMs, why);
            return;
          }
        }
      } finally {
        native().closeFd(fd);
      }
    };
    void watch();
    return stop;
  }

  private pollProcess(pid: number, pollMs: number, why: string): () => void {
    const timer = setInterval(() => {
      if (this.disconnectReason !== '') {
        clearInterval(timer);
        return;
      }
      try {
        process.kill(pid, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
          clearInterval(timer);
          this.taskExited(why);
        }
      }
    }, pollMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Disconnects (if still connected), unmaps the memory and removes the shared memory name. After this the
   * driver's views are empty; frames it still held count as reclaimed.
   */
  close(): void {
    this.disconnect('closed by the driver');
    for (let i = 0; i < this.owner.length; i++) {
      const o = this.owner[i];
      if (o !== FrameOwner.RECLAIMED) this.move(i, o, FrameOwner.RECLAIMED);
    }
    if (this.unmapped) return;
    this.unmapped = true;
    this.group?.leave(this.member);
    this.unlinkName();
    this.segment.unmap();
  }

  /**
   * Removes the shared memory name now (the mappings stay). Done by the first {@link flush} after the task
   * attached, and by {@link close}; call it yourself once the task surely attached by other means.
   */
  unlinkName(): void {
    if (this.nameUnlinked) return;
    this.nameUnlinked = true;
    if (this.handle.transport === 'process') unlinkQuietly(this.handle.name);
  }
}

function unlinkQuietly(name: string): void {
  try {
    SharedMemory.unlink(name);
  } catch {
    // Already gone: nothing to do.
  }
}

/**
 * Creates a channel (driver side): lays out and initialises the shared memory, the six rings and the pool.
 * Hand `channel.handle` to the task, which calls {@link attachChannel}.
 */
export function createChannel(options: ChannelOptions = {}): DriverChannel {
  const frameSize = options.frameSize ?? 2048;
  const frameCount = options.frameCount ?? 256;
  const controlCapacity = options.controlCapacity ?? 16;
  check(isPowerOfTwo(frameSize) && frameSize >= 64, `frameSize: expected a power of two >= 64, got ${frameSize}`);
  check(
    Number.isInteger(frameCount) && frameCount >= 1 && frameCount <= 2 ** 20,
    `frameCount: expected 1..2^20, got ${frameCount}`,
  );
  check(isPowerOfTwo(controlCapacity), `controlCapacity: expected a power of two, got ${controlCapacity}`);
  // Before any memory is made: a full group must not leave a shared memory segment behind.
  if (options.group !== undefined) {
    check(options.group.size < options.group.capacity, `group: all ${options.group.capacity} members taken`);
  }
  const layout = channelLayout(frameSize, frameCount, controlCapacity);
  const segment = createSegment(options.transport ?? 'thread', layout.segmentSize, options.name);
  initSegment(segment.buffer, layout);
  return new DriverChannel(segment, layout, options);
}
