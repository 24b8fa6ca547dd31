import type { Program } from '@exonet/bpf';
import type { KeySet, RevocationSet } from '@exonet/grant';
import {
  type ChannelHandle,
  copyWords,
  createChannel,
  type DriverChannel,
  type DriverChannelGroup,
  wordViewOf,
} from '@exonet/ipc';
import { TxStatus } from '@exonet/protocol';
import { extractFlowKey, FlowKey, FlowKeyStatus, formatMac, IpProtocol } from '@exonet/wire';
import type { NetDevice } from '../driver/net-device.ts';
import { Conntrack, type ConntrackOptions, TrackVerdict } from './conntrack.ts';
import { copyFrame } from './copy.ts';
import type { Demux } from './demux.ts';
import { IndexedDemux, mayOverlap } from './demux-index.ts';
import { compileFilter } from './filter-engine.ts';
import { Firewall } from './firewall.ts';
import { FragmentTracker } from './fragments.ts';
import { type FrameFilter, GrantTable, type InstalledGrant, type RemovalCause } from './grant-table.ts';
import { type SessionHost, TaskSession } from './task-session.ts';

/** How the core is put together; everything but the device and the issuer's keys has a default. */
export interface CoreOptions {
  /** This driver's id (grants' `aud`). */
  readonly driverId: string;
  readonly device: NetDevice;
  /** The issuer's key set (from its JWKS); undefined until fetched. */
  readonly keys: () => KeySet | undefined;
  /** The revocation list the driver follows (the feed follower applies verified lists to it). */
  readonly revocations: RevocationSet;
  /**
   * False while the revocation feed is older than the staleness bound: the core then fails closed (task
   * filters suspended, no task frame sent; the system firewall stays). Default: always fresh.
   */
  readonly feedFresh?: () => boolean;
  readonly firewall?: Firewall;
  readonly clockToleranceSec?: number;
  /** A grant living longer than this is refused (the staleness bound, so fail-closed can bound damage). */
  readonly maxLifetimeSec?: number;
  readonly issuer?: string;
  /** Whether two programs may overlap (exclusivity); default: judged from their demux summaries. */
  readonly mayOverlap?: (a: Program, b: Program) => boolean;
  /** The receive demultiplexer; default the merged index ({@link IndexedDemux}). */
  readonly demux?: Demux;
  readonly conntrack?: ConntrackOptions;
  /** Most tasks attached at once. */
  readonly maxTasks?: number;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  /**
   * Receive coalescing (as a NIC's rx-frames / rx-usecs): while frames keep arriving (every poll uses its
   * whole RX budget), what was delivered is published to the tasks (and their pollers woken) only once this
   * many frames have been delivered since the last publish, or {@link rxCoalesceMicros} passed. With frames
   * spread over many tasks, each task then gets several frames per publish instead of one, which divides the
   * per-task cost of a publish (its ring indices, its wake-up) among them. It waits only while the tasks
   * average fewer than 8 frames each (with few tasks every publish already carries many) and publishes at
   * once when a task ran out of empty frames. A poll that leaves the RX ring empty always publishes, so a
   * link that is not saturated adds no latency. Default 8192; 0 publishes after every poll.
   */
  readonly rxCoalesceFrames?: number;
  /** Longest a delivered frame waits for its publish while coalescing, µs. Default 2000. */
  readonly rxCoalesceMicros?: number;
  /** Coalescing waits only while the tasks it publishes to average fewer frames each than this. Default 8. */
  readonly rxCoalescePerTask?: number;
  /**
   * Two-phase delivery of small frames from this many attached tasks on (see {@link STAGE_MIN_TASKS});
   * Infinity turns it off, 0 always stages. Default 256.
   */
  readonly rxStageMinTasks?: number;
  /**
   * How often every task's control and TX rings are looked at, flagged or not, ms (10 times less often while
   * frames keep arriving). Between sweeps a poll visits only the tasks that announced work. Default 5.
   */
  readonly sweepMs?: number;
  /** Test hook: runs after a task's frame is copied into the NIC buffer and before the layers judge it. */
  readonly afterTxCopy?: (task: TaskSession, poolOffset: number) => void;
}

/** Options of one attach. */
export interface AttachRequest {
  /** The principal the task runs as: the launcher's word (the kernel's, in a microkernel). */
  readonly principal: string;
  readonly transport?: 'thread' | 'process';
  /** Frames in the task's packet pool (default 256). */
  readonly frameCount?: number;
  /**
   * The channel group of the event loop that will host this task (@exonet/ipc createChannelGroup, same
   * transport): the tasks of one worker or process then share one doorbell, and a burst spread over many of
   * them wakes their poller once instead of once per task.
   */
  readonly group?: DriverChannelGroup;
}

/** Counters of the whole core (monotonic). */
export interface CoreCounters {
  rxFrames: number;
  /** Frames delivered to at least one task. */
  rxClaimed: number;
  /** Frames no task accepted (dropped, or given to system-layer monitor grants). */
  rxUnclaimed: number;
  rxMonitor: number;
  rxFirewallDenied: number;
  rxSuspended: number;
  /** Copies delivered (one frame to three tasks counts three). */
  rxCopies: number;
  rxViaConntrack: number;
  rxViaFragment: number;
  txFrames: number;
  txSent: number;
  txDenied: number;
  filterRuns: number;
}

const NONE = -1;
/** While the receive path is idle, every task's rings are looked at (not only flagged ones) this often, ms. */
const SWEEP_IDLE_MS = 5;
/** While frames keep arriving, the sweep comes this many times less often. */
const SWEEP_BUSY_FACTOR = 10;
/** Frames one task may send per visit: a task that always has more cannot hold the NIC from the others. */
const TX_PER_VISIT = 64;
/** Coalescing waits only while the tasks it publishes to average fewer frames each than this. */
const COALESCE_PER_TASK = 8;
const NO_VISIT = (_member: number): void => {};
/**
 * Staging of small frames (two-phase delivery): with at least this many tasks attached, a frame for a task is
 * first copied into a driver-local arena and reaches the task's queue only when what was delivered is
 * published (or the arena fills), all of one task's frames in one go.
 */
const STAGE_MIN_TASKS = 256;
/** Frames the staging arena holds, and its size in 32-bit words (small frames take at most 64 each). */
const STAGE_FRAMES = 1 << 14;
const STAGE_WORDS = 1 << 18;

/**
 * The exokernel core of one driver: RX demultiplexing into task queues, layered TX filtering on the NIC's own
 * copy of each frame, the grant table, connection tracking. Single-threaded: call {@link poll} from the
 * thread that owns the device (the driver service does, from its loop).
 */
export class ExokernelCore implements SessionHost {
  readonly driverId: string;
  readonly device: NetDevice;
  readonly grants: GrantTable;
  readonly firewall: Firewall;
  readonly conntrack: Conntrack;
  readonly fragments = new FragmentTracker();
  /**
   * IPv4 datagrams whose first fragment a task sent: their later fragments carry no transport header, so no
   * port filter of a TX grant can accept them; they follow the first instead. A task sends all fragments of a
   * datagram in one burst, so entries live only seconds.
   */
  readonly txFragments = new FragmentTracker(256, 1, 5000);
  readonly counters: CoreCounters = {
    rxFrames: 0,
    rxClaimed: 0,
    rxUnclaimed: 0,
    rxMonitor: 0,
    rxFirewallDenied: 0,
    rxSuspended: 0,
    rxCopies: 0,
    rxViaConntrack: 0,
    rxViaFragment: 0,
    txFrames: 0,
    txSent: 0,
    txDenied: 0,
    filterRuns: 0,
  };
  readonly mac: string;
  readonly maxFrameSize: number;

  readonly #o: CoreOptions;
  readonly #now: () => number;
  readonly #demux: Demux;
  /** System-layer RX grants: monitors of frames no task accepted. */
  #monitors: InstalledGrant[] = [];
  /** TX grants per task, split by layer. */
  readonly #txTask = new Map<number, InstalledGrant[]>();
  readonly #txUser = new Map<string, InstalledGrant[]>();
  readonly #sessions: (TaskSession | undefined)[];
  readonly #live = new Set<TaskSession>();
  /** The same tasks as an array, the order the per-poll scan visits them in (from a rotating start). */
  readonly #liveList: TaskSession[] = [];
  #scanStart = 0;
  /** Tasks to visit this poll (they raised their "posted" flag, or still had frames to send). */
  readonly #visits: TaskSession[] = [];
  /** Per task: 1 while it still has frames queued that a visit left (NIC full, or its per-visit share used). */
  readonly #carry: Uint8Array;
  /** Per task: frames delivered since its last flush (added to its counters then). */
  readonly #delivered: Float64Array;
  /** Tasks a visit left frames queued at, visited again next poll. */
  #carried: TaskSession[] = [];
  /** Per task: 1 once it is in this poll's visit list. */
  readonly #inVisit: Uint8Array;
  /** Groups to wake at the end of this poll. */
  readonly #kick: DriverChannelGroup[] = [];
  /** Tasks attached without a group: their own "posted" flag is looked at on every poll. */
  readonly #ungrouped: TaskSession[] = [];
  /** Channel groups in use: members by index, and the visitor their driver pending bits are taken with. */
  readonly #groups = new Map<
    DriverChannelGroup,
    { members: (TaskSession | undefined)[]; count: number; visit: (member: number) => void }
  >();
  readonly #freeIds: number[] = [];
  #nextId = 0;
  /** Per task: the epoch of the last frame delivered to it, so a frame reaches a task once. */
  readonly #stamp: Float64Array;
  #epoch = 0;
  /** Tasks that got the current frame (for fragment tracking). */
  readonly #got: Int32Array;
  #gotCount = 0;
  /** Tasks whose rings this poll staged something in (a delivery, a TX completion): only these are flushed. */
  readonly #dirty: TaskSession[] = [];
  readonly #isDirty: Uint8Array;
  /**
   * Per task: the shared receive queue of its group, if it has one, and its tag there. Flat arrays, so that a
   * frame for such a task touches nothing of the task's own objects (its session is not even looked up).
   */
  readonly #sharedQueue: (DriverChannel | undefined)[];
  readonly #rxTag: Uint32Array;
  /** Shared receive queues this poll delivered into, flushed with the tasks. */
  readonly #dirtyShared: DriverChannel[] = [];
  /** Channels the next publish flushes: the tasks' marked 1 and the shared queues. */
  #flushCount = 0;
  #frame: Uint8Array = new Uint8Array(0);
  /** An Int32 view over the whole buffer of the current frame (see #viewSource). */
  #srcWords: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /**
   * Whether the current frame can be copied word by word (small, 4-aligned, readable to the word past its
   * end): judged once per frame, for however many tasks get a copy.
   */
  #wordCopy = false;
  /** The word view the device lent with the current frame (RxSink), if any. */
  #lentWords: Int32Array<ArrayBufferLike> | undefined;
  #length = 0;
  readonly #key = new FlowKey();
  readonly #scratch = new FlowKey();
  #wasSuspended = false;
  #lastTimers = 0;
  #lastSweep = 0;
  /** Frames delivered since the last publish, and when the first of them was (performance.now()). */
  #unflushed = 0;
  /** A delivery found a task without an empty frame: publish now, so it gets its frames back to offer. */
  #starved = false;
  #unflushedSince = 0;
  #coalesceFrames: number;
  #coalesceMs: number;
  #coalescePerTask: number;
  #stageMinTasks: number;
  /** The clock and the fail-closed state, read once per poll. */
  #pollNow = 0;
  #suspendedNow = false;
  /**
   * The staging arena (see {@link STAGE_MIN_TASKS}): frames copied in arrival order, each entry its word
   * offset, length in bytes and the next entry of the same task; per task the first and last of its entries.
   * Driver-local memory only: nothing here is shared with a task.
   */
  readonly #stageWords = new Int32Array(STAGE_WORDS);
  readonly #stageOffset = new Int32Array(STAGE_FRAMES);
  readonly #stageLength = new Int32Array(STAGE_FRAMES);
  readonly #stageNext = new Int32Array(STAGE_FRAMES);
  readonly #stageHead: Int32Array;
  /** Per task: the largest frame staged for it (its pool's frame size, at most 256 bytes). */
  readonly #stageMax: Int32Array;
  readonly #stageTail: Int32Array;
  #stageAt = 0;
  #stageCount = 0;
  /** Whether this poll stages (decided while the arena is empty, so a task's frames never pass each other). */
  #staging = false;

  constructor(options: CoreOptions) {
    this.#o = options;
    this.driverId = options.driverId;
    this.device = options.device;
    this.#now = options.now ?? Date.now;
    this.#demux = options.demux ?? new IndexedDemux();
    this.firewall = options.firewall ?? new Firewall();
    this.conntrack = new Conntrack(options.conntrack);
    this.mac = formatMac(options.device.macAddress());
    this.maxFrameSize = options.device.capabilities.maxFrameSize;
    const maxTasks = options.maxTasks ?? 16_384;
    this.#sessions = new Array(maxTasks).fill(undefined);
    this.#stamp = new Float64Array(maxTasks);
    this.#got = new Int32Array(maxTasks);
    this.#isDirty = new Uint8Array(maxTasks);
    this.#carry = new Uint8Array(maxTasks);
    this.#inVisit = new Uint8Array(maxTasks);
    this.#delivered = new Float64Array(maxTasks);
    this.#sharedQueue = new Array(maxTasks).fill(undefined);
    this.#rxTag = new Uint32Array(maxTasks);
    this.#stageHead = new Int32Array(maxTasks).fill(NONE);
    this.#stageMax = new Int32Array(maxTasks);
    this.#stageTail = new Int32Array(maxTasks);
    this.#coalesceFrames = Math.max(0, options.rxCoalesceFrames ?? 8192);
    this.#coalesceMs = Math.max(0, options.rxCoalesceMicros ?? 2000) / 1000;
    this.#coalescePerTask = Math.max(1, options.rxCoalescePerTask ?? COALESCE_PER_TASK);
    this.#stageMinTasks = Math.max(0, options.rxStageMinTasks ?? STAGE_MIN_TASKS);
    this.grants = new GrantTable({
      driverId: options.driverId,
      keys: options.keys,
      revocations: options.revocations,
      clockToleranceSec: options.clockToleranceSec,
      maxLifetimeSec: options.maxLifetimeSec,
      issuer: options.issuer,
      now: () => Math.floor(this.#now() / 1000),
      compile: compileFilter,
      mayOverlap: options.mayOverlap ?? mayOverlap,
      suspended: () => this.suspended(),
    });
    this.grants.onChange((g, change) => this.#grantChanged(g, change));
  }

  /** Changes receive coalescing at run time (see {@link CoreOptions.rxCoalesceFrames}); 0 frames turns it off. */
  setRxCoalescing(frames: number, micros = 2000, perTask = COALESCE_PER_TASK): void {
    this.#coalesceFrames = Math.max(0, frames);
    this.#coalesceMs = Math.max(0, micros) / 1000;
    this.#coalescePerTask = Math.max(1, perTask);
  }

  /**
   * Changes from how many attached tasks on small frames are staged (see {@link CoreOptions.rxStageMinTasks});
   * takes effect once the frames staged so far are delivered.
   */
  setRxStaging(minTasks: number): void {
    this.#stageMinTasks = Math.max(0, minTasks);
  }

  /** True while the core fails closed. */
  suspended(): boolean {
    return this.#o.feedFresh !== undefined && !this.#o.feedFresh();
  }

  /** Attached tasks (their counters brought up to date). */
  sessions(): TaskSession[] {
    for (const s of this.#live) this.syncCounters(s);
    return [...this.#live];
  }

  session(id: number): TaskSession | undefined {
    const s = this.#sessions[id];
    if (s !== undefined) this.syncCounters(s);
    return s;
  }

  /**
   * Adds to a task's counters what the packet path counted for it in the core's flat arrays since (frames
   * delivered through a shared receive queue are counted only there, so that they touch no object of the task).
   */
  syncCounters(s: TaskSession): void {
    const n = this.#delivered[s.id];
    if (n !== 0 && this.#sessions[s.id] === s) {
      s.counters.rxDelivered += n;
      this.#delivered[s.id] = 0;
    }
  }

  /**
   * Attaches a task: creates its channel and session. Give `handle` to the task (worker data, or the shared
   * memory name for a process); it attaches its end with @exonet/ipc's attachChannel and starts with HELLO.
   */
  attach(request: AttachRequest): { session: TaskSession; handle: ChannelHandle } {
    if (typeof request.principal !== 'string' || request.principal === '') {
      throw new TypeError('attach: expected a principal');
    }
    const id = this.#freeIds.pop() ?? this.#nextId++;
    if (id >= this.#sessions.length) throw new RangeError(`attach: at most ${this.#sessions.length} tasks`);
    const channel = createChannel({
      transport: request.transport ?? 'thread',
      frameCount: request.frameCount ?? 256,
      onDisconnect: () => queueMicrotask(() => this.detach(id)),
      group: request.group,
    });
    const session = new TaskSession(id, request.principal, channel, this.#now());
    this.#sessions[id] = session;
    this.#stamp[id] = 0;
    this.#delivered[id] = 0;
    this.#stageHead[id] = NONE;
    this.#stageMax[id] = Math.min(256, channel.pool.frameSize);
    this.#live.add(session);
    this.#liveList.push(session);
    this.#carry[id] = 0;
    const group = request.group;
    if (group === undefined) this.#ungrouped.push(session);
    else {
      let entry = this.#groups.get(group);
      if (entry === undefined) {
        const members: (TaskSession | undefined)[] = new Array(group.capacity).fill(undefined);
        // The bits are the tasks' word: an index of no member of ours is ignored.
        const visit = (m: number): void => {
          const t = members[m];
          if (t !== undefined) this.#addVisit(t);
        };
        entry = { members, count: 0, visit };
        this.#groups.set(group, entry);
      }
      entry.members[channel.member] = session;
      entry.count++;
      session.group = group;
      this.#sharedQueue[id] = group.sharedRx;
      this.#rxTag[id] = channel.rxTag;
    }
    return { session, handle: channel.handle };
  }

  /**
   * Detaches a task (it left, died, or broke the protocol): every grant, flow, fragment entry and buffer of
   * it goes at once.
   */
  detach(id: number): void {
    const s = this.#sessions[id];
    if (s === undefined) return;
    this.#sessions[id] = undefined;
    this.#sharedQueue[id] = undefined;
    this.#live.delete(s);
    const at = this.#liveList.indexOf(s);
    if (at >= 0) this.#liveList.splice(at, 1);
    const u = this.#ungrouped.indexOf(s);
    if (u >= 0) this.#ungrouped.splice(u, 1);
    const c = this.#carried.indexOf(s);
    if (c >= 0) this.#carried.splice(c, 1);
    this.#carry[id] = 0;
    // Its staged frames are dropped, and it leaves the flush list: a new task given the same id must start
    // with neither.
    this.#stageHead[id] = NONE;
    if (this.#isDirty[id] === 1) {
      this.#flushCount--;
      this.#isDirty[id] = 0;
      const d = this.#dirty.indexOf(s);
      if (d >= 0) this.#dirty.splice(d, 1);
    }
    if (s.group !== undefined) {
      const entry = this.#groups.get(s.group);
      if (entry !== undefined && entry.members[s.channel.member] === s) {
        entry.members[s.channel.member] = undefined;
        if (--entry.count === 0) this.#groups.delete(s.group);
      }
    }
    this.grants.removeTask(id);
    this.conntrack.removeTask(id);
    this.fragments.removeTask(id);
    this.txFragments.removeTask(id);
    s.channel.close();
    this.#freeIds.push(id);
  }

  /**
   * One turn of the driver: control requests, received frames, frames to send, timers.
   * @returns how much work was done (0 when idle)
   */
  poll(rxBudget = 256): number {
    let work = 0;
    const now = this.#now();
    this.#pollNow = now;
    // Judged once a turn, not per frame: the feed's freshness changes on a scale of seconds.
    this.#suspendedNow = this.suspended();
    if (now - this.#lastTimers >= 100) work += this.#timers(now);
    if (this.#stageCount === 0) this.#staging = this.#liveList.length >= this.#stageMinTasks;
    const rx = this.device.receive(this.#onFrame, rxBudget);
    work += rx;
    // Looking at a task's control and TX rings costs about a microsecond, too much for a thousand tasks on
    // every poll. A task raises its "posted" flag after it publishes a request or a frame to send (or closes),
    // so each poll visits only the flagged tasks (and those a visit left frames queued at); a full sweep of
    // every task now and then serves peers that do not raise the flag and notices closed channels.
    // Tasks in a channel group mark themselves in the group's driver pending bitmap instead: a few words for
    // hundreds of tasks.
    const t = performance.now();
    const visits = this.#visits;
    const sweepMs = this.#o.sweepMs ?? SWEEP_IDLE_MS;
    const sweep = t - this.#lastSweep >= (rx < rxBudget ? sweepMs : sweepMs * SWEEP_BUSY_FACTOR);
    if (sweep) {
      this.#lastSweep = t;
      this.#carried = [];
      const list = this.#liveList;
      // From a rotating start, so that when the NIC's TX ring runs short no task is always served last.
      const n = list.length;
      const start = n > 0 ? this.#scanStart++ % n : 0;
      for (const entry of this.#groups.keys()) entry.takeDriverPending(NO_VISIT);
      for (let k = 0; k < n; k++) {
        const s = list[(start + k) % n];
        s.channel.takePosted();
        this.#addVisit(s);
      }
    } else {
      const carried = this.#carried;
      this.#carried = [];
      for (let i = 0; i < carried.length; i++) this.#addVisit(carried[i]);
      for (const [group, entry] of this.#groups) group.takeDriverPending(entry.visit);
      const ungrouped = this.#ungrouped;
      for (let i = 0; i < ungrouped.length; i++) if (ungrouped[i].channel.takePosted()) this.#addVisit(ungrouped[i]);
    }
    if (visits.length > 0) {
      for (let i = 0; i < visits.length; i++) {
        const s = visits[i];
        if (s.channel.connected) work += s.serviceControl(this);
        // The task closed its end (or broke the protocol): everything of it goes now.
        else queueMicrotask(() => this.detach(s.id));
      }
      work += this.#transmit(visits);
      for (let i = 0; i < visits.length; i++) this.#inVisit[visits[i].id] = 0;
      visits.length = 0;
    }
    // Flush only the tasks whose rings got something: with a thousand tasks, flushing (and so touching the
    // shared memory of) every one of them on every poll cost more than the frames themselves.
    // Tasks in a channel group are only marked pending by their flush; each group's poller is then woken at
    // most once for the whole turn (waking it at the first mark would let it drain one task, sleep again,
    // and be woken again by the next mark).
    const dirty = this.#dirty;
    if (dirty.length === 0 && this.#dirtyShared.length === 0) return work;
    if (this.#coalesceFrames > 0 && rx >= rxBudget && !this.#starved) {
      if (this.#unflushed === 0) this.#unflushedSince = t;
      this.#unflushed += rx;
      // Worth waiting only while the tasks get few frames each (with few tasks every publish already carries
      // many), and never past the frame or time bound.
      if (
        this.#unflushed < this.#coalesceFrames &&
        this.#unflushed < this.#coalescePerTask * this.#flushCount &&
        t - this.#unflushedSince < this.#coalesceMs
      ) {
        return work;
      }
    }
    this.#unflushed = 0;
    this.#starved = false;
    this.#drainStaged();
    const kick = this.#kick;
    for (let i = 0; i < dirty.length; i++) {
      const s = dirty[i];
      this.#isDirty[s.id] = 0;
      if (this.#delivered[s.id] !== 0) {
        s.counters.rxDelivered += this.#delivered[s.id];
        this.#delivered[s.id] = 0;
      }
      s.channel.flush(false);
      const g = s.group;
      if (g !== undefined && !kick.includes(g)) kick.push(g);
    }
    dirty.length = 0;
    const shared = this.#dirtyShared;
    for (let i = 0; i < shared.length; i++) {
      shared[i].flush(false);
      const g = shared[i].channelGroup;
      if (g !== undefined && !kick.includes(g)) kick.push(g);
    }
    shared.length = 0;
    this.#flushCount = 0;
    for (let i = 0; i < kick.length; i++) kick[i].kick();
    kick.length = 0;
    return work;
  }

  // ---------------------------------------------------------------- receive

  /** Bound once: the device lends each received frame here. */
  readonly #onFrame = (frame: Uint8Array, length: number, words?: Int32Array<ArrayBufferLike>): void => {
    const c = this.counters;
    c.rxFrames++;
    if (this.firewall.size > 0 && !this.firewall.allowsRx(frame, length)) {
      c.rxFirewallDenied++;
      return;
    }
    if (this.#suspendedNow) {
      c.rxSuspended++;
      return;
    }
    this.#epoch++;
    this.#gotCount = 0;
    this.#frame = frame;
    this.#length = length;
    this.#lentWords = words;
    this.#wordCopy = length <= 256 && (frame.byteOffset & 3) === 0 && frame.length >= length + 3;
    if (this.#demux.size > 0) this.#demux.candidates(frame, length, this.#visit);
    // With no tracked flow, an unfragmented IPv4 frame has nothing left to consult: no owner by conntrack,
    // no ICMP error owner, no fragment to begin or follow. Skipping the flow key then saves its extraction.
    const plainIpv4 =
      this.conntrack.size === 0 &&
      length >= 34 &&
      frame[12] === 0x08 &&
      frame[13] === 0x00 &&
      (frame[20] & 0x3f) === 0 &&
      frame[21] === 0;
    const key = this.#key;
    const status = plainIpv4 ? FlowKeyStatus.TRUNCATED : extractFlowKey(frame, key, length);
    const now = this.#pollNow;
    if (plainIpv4) {
      // Nothing: see above.
    } else if (status === FlowKeyStatus.OK) {
      let owner = this.conntrack.size > 0 ? this.conntrack.receive(frame, length, key, now) : NONE;
      if (owner === NONE && (key.protocol === IpProtocol.ICMP || key.protocol === IpProtocol.ICMPV6)) {
        owner = this.conntrack.icmpErrorOwner(frame, length, key, this.#scratch, now);
      }
      if (owner !== NONE && this.#deliver(owner)) c.rxViaConntrack++;
      if (key.fragId >= 0 && key.moreFragments && this.#gotCount > 0) {
        const entry = this.fragments.begin(key, now);
        for (let i = 0; i < this.#gotCount; i++) this.fragments.add(entry, this.#got[i]);
      }
    } else if (status === FlowKeyStatus.FRAGMENT) {
      this.fragments.follow(key, now, this.#deliverFragment);
    }
    if (this.#gotCount > 0) {
      c.rxClaimed++;
      return;
    }
    c.rxUnclaimed++;
    const monitors = this.#monitors;
    for (let i = 0; i < monitors.length; i++) {
      const m = monitors[i];
      c.filterRuns++;
      if (m.filter(frame, length, length) !== 0 && this.#deliver(m.task)) c.rxMonitor++;
    }
  };

  readonly #visit = (_g: InstalledGrant, task: number, filter: FrameFilter): void => {
    // System-layer RX grants never enter the demux (#grantChanged keeps them as monitors).
    if (this.#stamp[task] === this.#epoch) return;
    this.counters.filterRuns++;
    if (filter(this.#frame, this.#length, this.#length) !== 0) this.#deliver(task);
  };

  readonly #deliverFragment = (task: number): void => {
    if (this.#deliver(task)) this.counters.rxViaFragment++;
  };

  /** Copies the current frame into a task's RX queue, once per frame. */
  #deliver(task: number): boolean {
    if (this.#stamp[task] === this.#epoch) return false;
    this.#stamp[task] = this.#epoch;
    const queue = this.#sharedQueue[task];
    if (queue !== undefined) {
      this.#got[this.#gotCount++] = task;
      return this.#deliverShared(task, queue);
    }
    const s = this.#sessions[task];
    if (s === undefined) return false;
    this.#got[this.#gotCount++] = task;
    const frame = this.#frame;
    const length = this.#length;
    if (this.#staging && this.#wordCopy && length <= this.#stageMax[task]) {
      // Staged: nothing of the task (not even its session or channel object) is touched until the drain.
      this.#viewSource(frame);
      this.#stage(task, frame.byteOffset >>> 2, length);
      this.#touch(s);
      return true;
    }
    // A frame that is not staged must not overtake the task's staged ones.
    if (this.#stageHead[task] !== NONE) this.#drainTask(s);
    const ch = s.channel;
    if (this.#wordCopy && length <= ch.pool.frameSize) {
      // Small aligned frames (most of a packet rate): take, copy word by word and deliver in one step, over a
      // word view of the NIC's buffer made once.
      this.#viewSource(frame);
      if (!ch.receiveWords(this.#srcWords, frame.byteOffset, length)) {
        s.counters.rxQueueFull++;
        this.#starved = true;
        return false;
      }
    } else {
      const offset = ch.takeRxBuffer();
      if (offset < 0) {
        s.counters.rxQueueFull++;
        this.#starved = true;
        return false;
      }
      const copied = Math.min(length, ch.pool.frameSize);
      copyFrame(frame, copied, ch.pool.bytes, offset, ch.pool.frameSize);
      ch.deliverRx(offset, copied);
    }
    this.#touch(s);
    // Counted in a flat array and added to the session's counters when the task is flushed: one cache line
    // less to reach per frame.
    this.#delivered[task]++;
    this.counters.rxCopies++;
    return true;
  }

  /**
   * Copies the current frame into the shared receive queue of the task's group, tagged for the task. The
   * queue is one channel for all the group's tasks, so consecutive frames for different tasks land in
   * consecutive slots and frames of one pool: no staging is needed to keep the writes close together.
   */
  #deliverShared(task: number, queue: DriverChannel): boolean {
    const frame = this.#frame;
    const length = this.#length;
    const tag = this.#rxTag[task];
    let ok: boolean;
    if (this.#wordCopy && length <= queue.pool.frameSize) {
      this.#viewSource(frame);
      ok = queue.receiveWords(this.#srcWords, frame.byteOffset, length, tag);
    } else {
      // Larger than the queue's frames (kept small so its pool stays within the TLB's reach): a chain of them.
      ok = queue.receiveChain(frame, length, tag);
    }
    if (!ok) {
      const s = this.#sessions[task];
      if (s !== undefined) s.counters.rxQueueFull++;
      this.#starved = true;
      return false;
    }
    // A group or two per driver thread: a short list beats a flag in the channel object.
    if (!this.#dirtyShared.includes(queue)) {
      this.#dirtyShared.push(queue);
      this.#flushCount++;
    }
    // Added to the task's counters when they are read (syncCounters).
    this.#delivered[task]++;
    this.counters.rxCopies++;
    return true;
  }

  /**
   * Points #srcWords at the buffer holding `frame`: the device's own word view when it lent one with the
   * frame (the r8169 driver does), else the one view kept per buffer.
   */
  #viewSource(frame: Uint8Array): void {
    this.#srcWords = this.#lentWords ?? wordViewOf(frame.buffer);
  }

  /**
   * Copies the current small frame (`length` bytes from word `srcWord` of the NIC's buffer) into the staging
   * arena, after the task's other staged frames. With many tasks, consecutive frames go to different tasks,
   * so delivering each at once pulls that task's channel state, ring slots and pool frame (last touched by
   * the task's thread, on another core) into this core's cache for one frame; staged, they are pulled once
   * for all the frames the task gets before the publish.
   */
  #stage(task: number, srcWord: number, length: number): void {
    const n = (length + 3) >>> 2;
    if (this.#stageCount === STAGE_FRAMES || this.#stageAt + n > STAGE_WORDS) this.#drainStaged();
    const e = this.#stageCount++;
    const at = this.#stageAt;
    copyWords(this.#stageWords, at, this.#srcWords, srcWord, n);
    this.#stageAt = at + n;
    this.#stageOffset[e] = at;
    this.#stageLength[e] = length;
    this.#stageNext[e] = NONE;
    if (this.#stageHead[task] === NONE) this.#stageHead[task] = e;
    else this.#stageNext[this.#stageTail[task]] = e;
    this.#stageTail[task] = e;
  }

  /**
   * Moves every staged frame into its task's RX queue (staged there, visible at the task's next flush), one
   * task at a time. A task out of empty frames loses the rest of its staged frames (counted as queue full),
   * as it would have lost them delivered one by one; the next flush is then not held back.
   */
  #drainStaged(): void {
    if (this.#stageCount === 0) return;
    const dirty = this.#dirty;
    for (let i = 0; i < dirty.length; i++) if (this.#stageHead[dirty[i].id] !== NONE) this.#drainTask(dirty[i]);
    this.#stageAt = 0;
    this.#stageCount = 0;
  }

  /** Moves one task's staged frames into its RX queue, in order (see {@link #drainStaged}). */
  #drainTask(s: TaskSession): void {
    const id = s.id;
    const words = this.#stageWords;
    const offsets = this.#stageOffset;
    const lengths = this.#stageLength;
    const next = this.#stageNext;
    let e = this.#stageHead[id];
    this.#stageHead[id] = NONE;
    const ch = s.channel;
    let n = 0;
    for (; e !== NONE; e = next[e]) {
      if (!ch.receiveWords(words, offsets[e] << 2, lengths[e])) break;
      n++;
    }
    for (; e !== NONE; e = next[e]) {
      s.counters.rxQueueFull++;
      this.#starved = true;
    }
    this.#delivered[id] += n;
    this.counters.rxCopies += n;
  }

  /** Adds a task to this poll's visits, once. */
  #addVisit(s: TaskSession): void {
    if (this.#inVisit[s.id] === 1) return;
    this.#inVisit[s.id] = 1;
    this.#visits.push(s);
  }

  /** Marks a task's rings for the flush at the end of this poll. */
  #touch(s: TaskSession): void {
    if (this.#isDirty[s.id] === 1) return;
    this.#isDirty[s.id] = 1;
    this.#dirty.push(s);
    this.#flushCount++;
  }

  // ---------------------------------------------------------------- transmit

  #transmit(visits: readonly TaskSession[]): number {
    const device = this.device;
    let sent = 0;
    let handled = 0;
    // Take a NIC buffer before a task's frame, so a full TX ring leaves the frame queued at the task. One
    // buffer is held across idle tasks rather than taken and given back for each (poll already dropped the
    // tasks that closed: nextTx returns nothing for a disconnected channel).
    let buf: Uint8Array | null = null;
    for (let i = 0; i < visits.length; i++) {
      const s = visits[i];
      const ch = s.channel;
      this.#carry[s.id] = 0;
      for (let taken = 0; ; taken++) {
        if (buf === null) buf = device.txAcquire();
        // The NIC is full, or this task had its share of the visit: what it still has waits for the next poll
        // (its flag was cleared, so remember it here).
        if (buf === null || taken === TX_PER_VISIT) {
          if (this.#carry[s.id] === 0) this.#carried.push(s);
          this.#carry[s.id] = 1;
          break;
        }
        const offset = ch.nextTx();
        if (offset < 0) break;
        this.#touch(s);
        handled++;
        this.counters.txFrames++;
        const length = ch.txLength;
        if (length > buf.length) {
          // The buffer stays untouched and lent, for the next frame.
          ch.completeTx(offset, TxStatus.INVALID);
          continue;
        }
        // The one copy: task memory straight into the NIC's buffer, which the NIC does not own yet. The
        // layers judge this copy, so whatever the task writes into its own frame from now on is irrelevant.
        buf.set(ch.pool.bytes.subarray(offset, offset + length));
        this.#o.afterTxCopy?.(s, offset);
        const verdict = this.#judge(s, buf, length);
        if (verdict === TxStatus.SENT) {
          device.txSubmit(length);
          s.counters.txSent++;
          this.counters.txSent++;
          sent++;
        } else {
          device.txDiscard();
          this.counters.txDenied++;
        }
        buf = null;
        ch.completeTx(offset, verdict);
      }
    }
    if (buf !== null) device.txDiscard();
    if (sent > 0) device.txCommit();
    return handled;
  }

  /** The TX layers, in order; returns SENT or the status naming the layer that refused. */
  #judge(s: TaskSession, frame: Uint8Array, length: number): number {
    const k = s.counters;
    if (this.#suspendedNow) {
      k.txSuspended++;
      return TxStatus.SUSPENDED;
    }
    const key = this.#key;
    const status = extractFlowKey(frame, key, length);
    // A later fragment of a datagram whose first fragment this task sent was judged, as a datagram, by the
    // task and user layers then (same source, destination, protocol and id); the system layers judge it anew.
    const follows = status === FlowKeyStatus.FRAGMENT && this.#followsTx(key, s.id);
    if (!follows && !anyAccepts(this.#txTask.get(s.id), frame, length)) {
      k.txDeniedTask++;
      return TxStatus.DENIED_TASK;
    }
    const user = this.#txUser.get(s.principal);
    if (!follows && user !== undefined && !anyAccepts(user, frame, length)) {
      k.txDeniedUser++;
      return TxStatus.DENIED_USER;
    }
    if (!this.firewall.allowsTx(frame, length)) {
      k.txDeniedFirewall++;
      return TxStatus.DENIED_FIREWALL;
    }
    if (status === FlowKeyStatus.TRUNCATED && key.l3Offset >= 0) {
      k.txDeniedConntrack++;
      return TxStatus.DENIED_CONNTRACK;
    }
    if (
      status === FlowKeyStatus.OK &&
      this.conntrack.transmit(frame, length, key, s.id, this.#pollNow) !== TrackVerdict.OK
    ) {
      k.txDeniedConntrack++;
      return TxStatus.DENIED_CONNTRACK;
    }
    if (status === FlowKeyStatus.OK && key.fragId >= 0 && key.moreFragments) {
      this.txFragments.add(this.txFragments.begin(key, this.#pollNow), s.id);
    }
    return TxStatus.SENT;
  }

  /** True when `task` sent the first fragment of the datagram `key` (a later fragment) names. */
  #followsTx(key: FlowKey, task: number): boolean {
    let found = false;
    this.txFragments.follow(key, this.#pollNow, (t) => {
      if (t === task) found = true;
    });
    return found;
  }

  // ---------------------------------------------------------------- grants and timers

  #grantChanged(g: InstalledGrant, change: 'installed' | RemovalCause): void {
    const c = g.claims;
    if (c.dir === 'rx') {
      if (c.layer === 'system') {
        this.#monitors = change === 'installed' ? [...this.#monitors, g] : this.#monitors.filter((m) => m !== g);
      } else if (change === 'installed') this.#demux.add(g);
      else this.#demux.remove(g);
    } else {
      const [map, key] = c.layer === 'user' ? [this.#txUser, c.sub] : [this.#txTask, g.task];
      const list = (map as Map<unknown, InstalledGrant[]>).get(key) ?? [];
      const next = change === 'installed' ? [...list, g] : list.filter((x) => x !== g);
      if (next.length === 0) (map as Map<unknown, InstalledGrant[]>).delete(key);
      else (map as Map<unknown, InstalledGrant[]>).set(key, next);
    }
    if (change !== 'installed' && change !== 'uninstalled' && change !== 'replaced' && change !== 'task-gone') {
      this.#sessions[g.task]?.event({ event: 'grant-removed', jti: g.jti, cause: change });
    }
  }

  /** Expiry, flow timeouts and fail-closed transitions. */
  #timers(now: number): number {
    this.#lastTimers = now;
    const removed = this.grants.expire(Math.floor(now / 1000)).length;
    this.conntrack.expire(now);
    const suspended = this.suspended();
    if (suspended !== this.#wasSuspended) {
      this.#wasSuspended = suspended;
      for (const s of this.#live) {
        s.event(
          suspended
            ? { event: 'suspended', reason: 'the revocation feed is stale: failing closed' }
            : { event: 'resumed' },
        );
      }
    }
    return removed;
  }

  /** Removes the grants the revocation set now revokes; call after the follower applied a list. */
  applyRevocations(): number {
    return this.grants.applyRevocations().length;
  }

  /** Detaches every task and stops nothing else (the device belongs to the caller). */
  close(): void {
    for (const s of [...this.#live]) this.detach(s.id);
  }
}

function anyAccepts(grants: readonly InstalledGrant[] | undefined, frame: Uint8Array, length: number): boolean {
  if (grants === undefined) return false;
  for (let i = 0; i < grants.length; i++) if (grants[i].filter(frame, length, length) !== 0) return true;
  return false;
}
