import { type GroupMembership, joinChannelGroup, type TaskChannelGroup } from './channel-group.ts';
import { check, IpcError } from './errors.ts';
import { ChannelHeader, type ChannelLayout, ChannelState, Descriptor, RingId } from './layout.ts';
import { PacketPool } from './pool.ts';
import type { RingConsumer, RingProducer } from './ring.ts';
import { sleepUntil, sleepUntilAsync } from './ring.ts';
import {
  type ChannelHandle,
  type ControlMessage,
  openRings,
  openSegment,
  type RingSet,
  readControl,
  readLayout,
  type Segment,
  writeControl,
} from './segment.ts';

/** Options of {@link attachChannel}. */
export interface AttachOptions {
  /** Frames offered to the driver for receiving right away (rx.free). Default: half the pool. */
  readonly rxBuffers?: number;
  /** Polls before sleeping in waits (busy-poll mode). Default 0. */
  readonly spin?: number;
}

/**
 * The task's end of a channel. The task starts owning every frame of its pool; it lends empty frames to the
 * driver for receiving ({@link postRx}) and gets them back full ({@link nextRx}); it fills frames and sends them
 * ({@link send}) and gets them back, with a status, once the driver is done ({@link nextCompletion}). A small
 * frame allocator keeps the frames it holds. Stage as many operations as you like, then {@link flush} once.
 */
export class TaskChannel {
  /** The packet memory shared with the driver. */
  readonly pool: PacketPool;
  readonly layout: ChannelLayout;
  /** Length of the frame last returned by {@link nextRx}. */
  rxLength = 0;
  /** The channel's group membership when the driver created it in a group (joinChannelGroup serves it). */
  readonly group: GroupMembership | undefined;
  /** Tag of the frame last returned by {@link nextRx} or {@link nextCompletion}. */
  tag = 0;
  /** Status of the frame last returned by {@link nextRx} or {@link nextCompletion}. */
  status = 0;

  private readonly segment: Segment;
  private readonly spin: number;
  private readonly rings: RingSet;
  private readonly rxFree: RingProducer;
  private readonly rxActive: RingConsumer;
  private readonly txActive: RingProducer;
  private readonly txFree: RingConsumer;
  private readonly ctlRequest: RingProducer;
  private readonly ctlResponse: RingConsumer;
  private readonly state: Int32Array;
  /** The "posted" flag (ChannelHeader.TASK_POSTED) the driver looks at to find tasks with work. */
  private readonly posted: Int32Array;
  /** The group this channel is a member of (it marks itself there for the driver), or undefined. */
  private readonly groupLink: TaskChannelGroup | undefined;
  private readonly member: number;
  private readonly one = new Uint32Array(Descriptor.WORDS);
  /** Frames this task holds and does not use: a stack of pool offsets. */
  private readonly freeFrames: Int32Array;
  private freeCount = 0;
  private closed = false;

  /** Use {@link attachChannel}. */
  constructor(segment: Segment, layout: ChannelLayout, options: AttachOptions) {
    this.segment = segment;
    this.layout = layout;
    this.pool = new PacketPool(segment.buffer, layout.poolOffset, layout.frameSize, layout.frameCount);
    this.spin = options.spin ?? 0;
    this.rings = openRings(segment, layout, 'task', this.spin);
    this.rxFree = this.rings.producers[RingId.RX_FREE]!;
    this.rxActive = this.rings.consumers[RingId.RX_ACTIVE]!;
    this.txActive = this.rings.producers[RingId.TX_ACTIVE]!;
    this.txFree = this.rings.consumers[RingId.TX_FREE]!;
    this.ctlRequest = this.rings.producers[RingId.CTL_REQUEST]!;
    this.ctlResponse = this.rings.consumers[RingId.CTL_RESPONSE]!;
    this.state = new Int32Array(segment.buffer, ChannelHeader.STATE, 1);
    this.posted = new Int32Array(segment.buffer, ChannelHeader.TASK_POSTED, 1);
    this.group = segment.handle.group;
    this.member = this.group?.member ?? -1;
    if (this.group !== undefined) {
      this.groupLink = joinChannelGroup(this.group.group);
      this.groupLink.retain();
    }
    this.freeFrames = new Int32Array(layout.frameCount);
    for (let i = layout.frameCount - 1; i >= 0; i--) this.freeFrames[this.freeCount++] = this.pool.offsetOf(i);
  }

  /** True until either side closes the channel. */
  get connected(): boolean {
    return !this.closed && Atomics.load(this.state, 0) === ChannelState.ATTACHED;
  }

  /** Frames this task holds unused. */
  get available(): number {
    return this.freeCount;
  }

  /** Takes an unused frame: its pool offset, or -1 if the task holds none. */
  alloc(): number {
    return this.freeCount > 0 ? this.freeFrames[--this.freeCount] : -1;
  }

  /** Puts back a frame the task holds (after reading a received packet, or one it decided not to send). */
  free(offset: number): void {
    check(this.freeCount < this.freeFrames.length, 'free: more frames returned than the pool has');
    this.freeFrames[this.freeCount++] = offset;
  }

  /** Lends an empty frame to the driver for receiving (staged; visible at flush). */
  postRx(offset: number): boolean {
    return this.rxFree.push(offset, this.pool.frameSize, 0, 0);
  }

  /**
   * The next received packet: its frame's pool offset (the task owns the frame again), with
   * {@link rxLength}, {@link tag} and {@link status} set; -1 if none.
   */
  nextRx(): number {
    if (!this.rxActive.pop(this.one)) return -1;
    this.rxLength = this.one[Descriptor.LENGTH];
    this.tag = this.one[Descriptor.TAG];
    this.status = this.one[Descriptor.STATUS];
    return this.one[Descriptor.OFFSET];
  }

  /** Asks the driver to transmit `length` bytes of the frame at `offset` (staged; visible at flush). */
  send(offset: number, length: number, tag = 0): boolean {
    return this.txActive.push(offset, length, tag, 0);
  }

  /** A frame the driver finished transmitting (or refused: see {@link status}); its offset, or -1. */
  nextCompletion(): number {
    if (!this.txFree.pop(this.one)) return -1;
    this.tag = this.one[Descriptor.TAG];
    this.status = this.one[Descriptor.STATUS];
    return this.one[Descriptor.OFFSET];
  }

  /** Publishes what was staged and gives back what was read: one atomic store per ring touched. */
  flush(): void {
    if (this.closed) return;
    // Release before publish (see DriverChannel.flush): rings sized to the pool then never overflow.
    this.rxActive.release();
    this.txFree.release();
    this.rxFree.publish();
    const tx = this.txActive.staged > 0;
    this.txActive.publish();
    // After publishing: the driver clears the flag before draining, so this store is never lost.
    if (tx) this.announce();
  }

  /** Tells the driver this task published work: the channel's flag, and its bit in the group if any. */
  private announce(): void {
    Atomics.store(this.posted, 0, 1);
    this.groupLink?.postDriver(this.member);
  }

  /** Sends a control request; false if the driver has not drained earlier ones (the ring is full). */
  request(message: ControlMessage): boolean {
    if (!writeControl(this.ctlRequest, message)) return false;
    this.announce();
    return true;
  }

  /** The next control response (copied out), or undefined. */
  readResponse(): ControlMessage | undefined {
    return readControl(this.ctlResponse) ?? undefined;
  }

  /** True if the driver left something: received packets, completions or control responses. */
  hasWork(): boolean {
    return this.rxActive.ready(1) > 0 || this.txFree.ready(1) > 0 || this.ctlResponse.ready(1) > 0;
  }

  private readonly workDone = () => !this.connected || this.hasWork();
  private readonly arm = () => {
    this.rxActive.arm();
    this.txFree.arm();
    this.ctlResponse.arm();
  };
  private readonly disarm = () => {
    this.rxActive.disarm();
    this.txFree.disarm();
    this.ctlResponse.disarm();
  };

  /** Blocks until the driver leaves something (true), or the channel closes or the timeout passes (false). */
  waitWork(timeoutMs = Number.POSITIVE_INFINITY): boolean {
    if (this.closed) return false;
    this.flush();
    for (let i = 0; i < this.spin; i++) if (this.workDone()) return this.connected && this.hasWork();
    sleepUntil(this.segment.doorbell, this.rings.bell, this.workDone, this.arm, this.disarm, timeoutMs);
    return !this.closed && this.hasWork();
  }

  /** {@link waitWork} without blocking the event loop. */
  async work(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (this.closed) return false;
    this.flush();
    for (let i = 0; i < this.spin; i++) if (this.workDone()) return this.connected && this.hasWork();
    await sleepUntilAsync(this.segment.doorbell, this.rings.bell, this.workDone, this.arm, this.disarm, timeoutMs);
    return !this.closed && this.hasWork();
  }

  /** Closes the task's end: tells and wakes the driver, then unmaps (process transport). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.compareExchange(this.state, 0, ChannelState.ATTACHED, ChannelState.TASK_CLOSED);
    this.announce();
    this.txActive.wakePeer();
    this.groupLink?.release();
    this.segment.unmap();
  }
}

/**
 * Attaches to a channel the driver created (task side): maps the memory the handle names, checks the header,
 * joins the rings, marks the channel attached and offers `rxBuffers` empty frames for receiving.
 * @throws IpcError EXO_ERR_IPC_BAD_LAYOUT, EXO_ERR_IPC_NATIVE (no such segment), EXO_ERR_IPC_CLOSED
 */
export function attachChannel(handle: ChannelHandle, options: AttachOptions = {}): TaskChannel {
  const segment = openSegment(handle);
  try {
    const layout = readLayout(segment.buffer);
    const state = new Int32Array(segment.buffer, ChannelHeader.STATE, 1);
    if (Atomics.compareExchange(state, 0, ChannelState.CREATED, ChannelState.ATTACHED) !== ChannelState.CREATED) {
      throw new IpcError('EXO_ERR_IPC_CLOSED', 'the channel is already attached or closed');
    }
    new Uint32Array(segment.buffer, ChannelHeader.TASK_PID, 1)[0] = process.pid;
    const channel = new TaskChannel(segment, layout, options);
    const rx = Math.min(options.rxBuffers ?? layout.frameCount >> 1, layout.frameCount);
    for (let i = 0; i < rx; i++) channel.postRx(channel.alloc());
    channel.flush();
    return channel;
  } catch (err) {
    segment.unmap();
    throw err;
  }
}
