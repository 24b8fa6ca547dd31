import { FlowKey, IpProtocol } from '@exonet/wire';

/**
 * Connection tracking: the seed's open question of where "pass me all traffic for port x" is not enough. A
 * flow that a task opened (its frame passed every TX layer) gets an implicit receive entry for the reverse
 * 5-tuple, so the task receives the return traffic of a connection or of a UDP exchange from an ephemeral
 * port without a grant for it. States and timeouts follow Linux's nf_conntrack (tcp, udp, icmp, generic).
 *
 * Nothing here allocates per packet: lookups hash the caller's {@link FlowKey} and compare in place; only a
 * new flow allocates its entry.
 */

/** TCP states as nf_conntrack_proto_tcp names them (a subset: no SYN_SENT2, no IGNORE). */
export const TcpState = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

const TCP_STATE_NAMES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
] as const;

/** Timeouts in seconds; the defaults are Linux's (net.netfilter.nf_conntrack_*_timeout*). */
export interface ConntrackTimeouts {
  readonly tcp: Readonly<Record<(typeof TCP_STATE_NAMES)[number], number>>;
  /** UDP flow that has seen no reply yet. */
  readonly udp: number;
  /** UDP flow that has seen traffic in both directions. */
  readonly udpStream: number;
  readonly icmp: number;
  readonly generic: number;
}

export const LINUX_TIMEOUTS: ConntrackTimeouts = {
  tcp: {
    NONE: 10,
    SYN_SENT: 120,
    SYN_RECV: 60,
    ESTABLISHED: 432_000,
    FIN_WAIT: 120,
    CLOSE_WAIT: 60,
    LAST_ACK: 30,
    TIME_WAIT: 120,
    CLOSE: 10,
  },
  udp: 30,
  udpStream: 120,
  icmp: 30,
  generic: 600,
};

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

/** One tracked flow; `key` is the original direction (as the owning task sent it). */
export interface FlowEntry {
  readonly key: FlowKey;
  readonly task: number;
  tcpState: TcpState;
  /** Seen traffic in the reply direction. */
  replied: boolean;
  finOriginal: boolean;
  finReply: boolean;
  /** Milliseconds (the clock the caller passes). */
  expiresAt: number;
}

/** What {@link Conntrack.transmit} decided for a frame a task wants to send. */
export const TrackVerdict = {
  /** The flow is the task's (new or existing). */
  OK: 0,
  /** The 5-tuple (either direction) belongs to another task's flow. */
  OTHER_OWNER: 1,
  /** The table (or the task's share of it) is full. */
  TABLE_FULL: 2,
} as const;
export type TrackVerdict = (typeof TrackVerdict)[keyof typeof TrackVerdict];

/** Limits of the table. */
export interface ConntrackOptions {
  readonly maxFlows?: number;
  readonly maxFlowsPerTask?: number;
  readonly timeouts?: ConntrackTimeouts;
}

/** The flow table of one driver. */
export class Conntrack {
  readonly #buckets = new Map<number, FlowEntry[]>();
  readonly #perTask = new Map<number, number>();
  readonly #maxFlows: number;
  readonly #maxPerTask: number;
  readonly #timeouts: ConntrackTimeouts;
  #size = 0;

  constructor(options: ConntrackOptions = {}) {
    this.#maxFlows = options.maxFlows ?? 65_536;
    this.#maxPerTask = options.maxFlowsPerTask ?? 4_096;
    this.#timeouts = options.timeouts ?? LINUX_TIMEOUTS;
  }

  /** Number of flows held. */
  get size(): number {
    return this.#size;
  }

  /** Flows of one task. */
  flowsOf(task: number): number {
    return this.#perTask.get(task) ?? 0;
  }

  /**
   * Finds the flow `key` belongs to in either direction. `reply` tells which: true when `key` is the
   * reverse of the entry's key. Returns undefined when untracked or expired at `now`.
   */
  find(key: FlowKey, now: number): { entry: FlowEntry; reply: boolean } | undefined {
    const found = this.#lookup(key, now);
    if (found === undefined) return undefined;
    return { entry: found, reply: this.#lastWasReply };
  }

  /**
   * Checks and records a frame a task is sending (the connection-state TX layer). Call only for frames
   * whose key `extractFlowKey` filled (`OK` status). A flow owned by another task refuses the frame; a new
   * flow is created for the task; the TCP state advances.
   */
  transmit(frame: Uint8Array, length: number, key: FlowKey, task: number, now: number): TrackVerdict {
    let entry = this.#lookup(key, now);
    if (entry !== undefined) {
      if (entry.task !== task) return TrackVerdict.OTHER_OWNER;
      this.#advance(entry, frame, length, key, this.#lastWasReply, now);
      return TrackVerdict.OK;
    }
    const flags = key.protocol === IpProtocol.TCP ? tcpFlags(frame, length, key) : 0;
    // A reset opens nothing (Linux does not create a conntrack entry for an untracked RST either).
    if (key.protocol === IpProtocol.TCP && (flags & TCP_RST) !== 0) return TrackVerdict.OK;
    if (this.#size >= this.#maxFlows) this.expire(now);
    if (this.#size >= this.#maxFlows || this.flowsOf(task) >= this.#maxPerTask) return TrackVerdict.TABLE_FULL;
    entry = {
      key: new FlowKey().copyFrom(key),
      task,
      tcpState: TcpState.NONE,
      replied: false,
      finOriginal: false,
      finReply: false,
      expiresAt: 0,
    };
    const h = key.symmetricHash();
    const bucket = this.#buckets.get(h);
    if (bucket === undefined) this.#buckets.set(h, [entry]);
    else bucket.push(entry);
    this.#size++;
    this.#perTask.set(task, this.flowsOf(task) + 1);
    this.#advance(entry, frame, length, key, false, now);
    return TrackVerdict.OK;
  }

  /**
   * The owner of a received frame's flow, when the frame travels in the reply direction of a flow a task
   * opened; -1 otherwise. Advances the flow's state.
   */
  receive(frame: Uint8Array, length: number, key: FlowKey, now: number): number {
    const entry = this.#lookup(key, now);
    if (entry === undefined || !this.#lastWasReply) return -1;
    this.#advance(entry, frame, length, key, true, now);
    return entry.task;
  }

  /**
   * The owner of the flow an ICMP or ICMPv6 error quotes (destination unreachable, time exceeded, parameter
   * problem, packet too big), or -1. `scratch` receives the quoted packet's key (the original direction).
   */
  icmpErrorOwner(frame: Uint8Array, length: number, key: FlowKey, scratch: FlowKey, now: number): number {
    if (key.l4Offset < 0) return -1;
    const t = frame[key.l4Offset];
    const isError =
      key.protocol === IpProtocol.ICMP
        ? t === 3 || t === 4 || t === 5 || t === 11 || t === 12
        : key.protocol === IpProtocol.ICMPV6 && t >= 1 && t <= 4;
    if (!isError || !quotedFlowKey(frame, length, key.l4Offset + 8, scratch)) return -1;
    scratch.vlan = key.vlan;
    const entry = this.#lookup(scratch, now);
    // The quoted packet is one the task sent, so it must match in the original direction.
    return entry !== undefined && !this.#lastWasReply ? entry.task : -1;
  }

  /** Removes every flow of a task (it detached or died). */
  removeTask(task: number): number {
    let removed = 0;
    for (const [h, bucket] of this.#buckets) {
      const kept = bucket.filter((e) => e.task !== task);
      removed += bucket.length - kept.length;
      if (kept.length === 0) this.#buckets.delete(h);
      else if (kept.length !== bucket.length) this.#buckets.set(h, kept);
    }
    this.#size -= removed;
    this.#perTask.delete(task);
    return removed;
  }

  /** Drops flows expired at `now`; returns how many. Call now and then (not per packet). */
  expire(now: number): number {
    let removed = 0;
    for (const [h, bucket] of this.#buckets) {
      const kept = bucket.filter((e) => e.expiresAt > now);
      if (kept.length === bucket.length) continue;
      for (const e of bucket) if (e.expiresAt <= now) this.#perTask.set(e.task, this.flowsOf(e.task) - 1);
      removed += bucket.length - kept.length;
      if (kept.length === 0) this.#buckets.delete(h);
      else this.#buckets.set(h, kept);
    }
    this.#size -= removed;
    return removed;
  }

  /** A readable list of flows (for `exonet driver status`). Allocates. */
  describe(): { task: number; flow: string; state: string; expiresAt: number }[] {
    const out: { task: number; flow: string; state: string; expiresAt: number }[] = [];
    for (const bucket of this.#buckets.values()) {
      for (const e of bucket) {
        const state =
          e.key.protocol === IpProtocol.TCP ? TCP_STATE_NAMES[e.tcpState] : e.replied ? 'REPLIED' : 'UNREPLIED';
        out.push({ task: e.task, flow: e.key.toString(), state, expiresAt: e.expiresAt });
      }
    }
    return out;
  }

  #lastWasReply = false;

  #lookup(key: FlowKey, now: number): FlowEntry | undefined {
    const bucket = this.#buckets.get(key.symmetricHash());
    if (bucket === undefined) return undefined;
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i];
      if (e.expiresAt <= now) continue;
      if (e.key.equals(key)) {
        this.#lastWasReply = false;
        return e;
      }
      if (isReverse(e.key, key)) {
        this.#lastWasReply = true;
        return e;
      }
    }
    return undefined;
  }

  #advance(e: FlowEntry, frame: Uint8Array, length: number, key: FlowKey, reply: boolean, now: number): void {
    if (reply) e.replied = true;
    const t = this.#timeouts;
    let timeout: number;
    switch (e.key.protocol) {
      case IpProtocol.TCP:
        timeout = t.tcp[TCP_STATE_NAMES[this.#tcpStep(e, tcpFlags(frame, length, key), reply)]];
        break;
      case IpProtocol.UDP:
        timeout = e.replied ? t.udpStream : t.udp;
        break;
      case IpProtocol.ICMP:
      case IpProtocol.ICMPV6:
        timeout = t.icmp;
        break;
      default:
        timeout = t.generic;
    }
    e.expiresAt = now + timeout * 1000;
  }

  /** The TCP state machine (a simplification of nf_conntrack_proto_tcp's tcp_conntracks table). */
  #tcpStep(e: FlowEntry, flags: number, reply: boolean): TcpState {
    const s = e.tcpState;
    let next: TcpState = s;
    if ((flags & TCP_RST) !== 0) next = TcpState.CLOSE;
    else if ((flags & TCP_SYN) !== 0) {
      if ((flags & TCP_ACK) === 0) next = s === TcpState.NONE || s >= TcpState.TIME_WAIT ? TcpState.SYN_SENT : s;
      else if (s === TcpState.NONE || s === TcpState.SYN_SENT) next = TcpState.SYN_RECV;
    } else if ((flags & TCP_FIN) !== 0) {
      if (reply) e.finReply = true;
      else e.finOriginal = true;
      next = e.finOriginal && e.finReply ? TcpState.LAST_ACK : reply ? TcpState.CLOSE_WAIT : TcpState.FIN_WAIT;
    } else if ((flags & TCP_ACK) !== 0) {
      if (s === TcpState.NONE || s === TcpState.SYN_RECV) next = TcpState.ESTABLISHED;
      else if (s === TcpState.LAST_ACK) next = TcpState.TIME_WAIT;
    }
    e.tcpState = next;
    return next;
  }
}

function isReverse(a: FlowKey, b: FlowKey): boolean {
  if (
    a.family !== b.family ||
    a.protocol !== b.protocol ||
    a.srcPort !== b.dstPort ||
    a.dstPort !== b.srcPort ||
    a.vlan !== b.vlan
  ) {
    return false;
  }
  for (let i = 0; i < 4; i++) if (a.src[i] !== b.dst[i] || a.dst[i] !== b.src[i]) return false;
  return true;
}

function tcpFlags(frame: Uint8Array, length: number, key: FlowKey): number {
  const at = key.l4Offset + 13;
  return key.l4Offset >= 0 && at < length ? frame[at] : 0;
}

/**
 * The 5-tuple of the IP packet an ICMP error quotes (its IP header and at least 8 bytes of its transport
 * header, RFC 792 / RFC 4443). Returns false when the quote is too short or not IP.
 */
function quotedFlowKey(frame: Uint8Array, length: number, off: number, key: FlowKey): boolean {
  key.clear();
  if (off >= length) return false;
  const version = frame[off] >> 4;
  let l4: number;
  if (version === 4) {
    const ihl = (frame[off] & 0x0f) * 4;
    if (ihl < 20 || length < off + ihl + 8) return false;
    key.family = 4;
    key.protocol = frame[off + 9];
    key.src[0] = read32(frame, off + 12);
    key.dst[0] = read32(frame, off + 16);
    l4 = off + ihl;
  } else if (version === 6) {
    if (length < off + 48) return false;
    key.family = 6;
    key.protocol = frame[off + 6];
    for (let i = 0; i < 4; i++) {
      key.src[i] = read32(frame, off + 8 + 4 * i);
      key.dst[i] = read32(frame, off + 24 + 4 * i);
    }
    l4 = off + 40;
  } else {
    return false;
  }
  const p = key.protocol;
  if (p === IpProtocol.TCP || p === IpProtocol.UDP) {
    key.srcPort = (frame[l4] << 8) | frame[l4 + 1];
    key.dstPort = (frame[l4 + 2] << 8) | frame[l4 + 3];
  } else if (p === IpProtocol.ICMP || p === IpProtocol.ICMPV6) {
    const t = frame[l4];
    if (t === 8 || t === 0 || t === 128 || t === 129) {
      key.srcPort = (frame[l4 + 4] << 8) | frame[l4 + 5];
      key.dstPort = key.srcPort;
    }
  }
  return true;
}

function read32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}
