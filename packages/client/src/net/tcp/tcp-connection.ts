/**
 * One TCP connection: the state machine of RFC 9293 section 3.3.2 with segment arrival processing per section
 * 3.10.7, retransmission per RFC 6298, congestion control per RFC 5681 with NewReno recovery (RFC 6582),
 * window scaling (RFC 7323 section 2), and the RST/SYN hardening of RFC 5961 (challenge ACKs).
 *
 * The connection knows nothing of streams or promises: it exposes buffers and calls `onChange` whenever
 * something an application waits for may have changed; {@link TcpSocket} builds the API on top.
 */
import { type IpAddress, TcpFlags, type TcpOptions, type TcpRepr, tcpSegmentLength } from '@exonet/wire';
import type { Clock, TimerHandle } from '../clock.ts';
import { NetError } from '../errors.ts';
import { formatEndpoint } from '../ip-text.ts';
import { ReassemblyBuffer } from './reassembly.ts';
import { RtoEstimator, type RtoOptions } from './rto.ts';
import { SendBuffer } from './send-buffer.ts';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax } from './seq.ts';

/** Connection states (RFC 9293 section 3.3.2). LISTEN lives in the listener, not here. */
export type TcpState =
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT'
  | 'CLOSED';

/** Tunables of a connection; defaults in brackets. */
export interface TcpConfig {
  /** Receive buffer, which bounds the advertised window [256 KiB]. */
  readonly receiveBuffer?: number;
  /** Send buffer: `write` waits while it is full [256 KiB]. */
  readonly sendBuffer?: number;
  /** Delayed-ACK timeout (RFC 9293 section 3.8.6.3 requires < 0.5 s) [40 ms]. */
  readonly ackDelayMs?: number;
  /** TIME-WAIT duration, 2*MSL [60 s, as Linux]. */
  readonly timeWaitMs?: number;
  /** SYN retransmissions before an active open fails [6]. */
  readonly synRetries?: number;
  /** Data retransmissions of one segment before the connection is aborted [15, as Linux's tcp_retries2]. */
  readonly maxRetries?: number;
  /**
   * Offer SACK-permitted and, when the peer agrees, report out-of-order data in SACK blocks on ACKs so the
   * peer retransmits only the holes (RFC 2018) [true]. Our sending side does not use the peer's blocks.
   */
  readonly sack?: boolean;
  /**
   * Keep-alive (RFC 1122 section 4.2.3.6): after this long without a segment from the peer, probe it; 0 is
   * off [0, as the RFC's default].
   */
  readonly keepAliveMs?: number;
  /** Interval between unanswered keep-alive probes [75 s, as Linux]. */
  readonly keepAliveIntervalMs?: number;
  /** Unanswered probes before the connection is aborted with EXO_ERR_NET_TIMEOUT [9, as Linux]. */
  readonly keepAliveProbes?: number;
  /** Initial congestion window in segments (RFC 6928) [10]. */
  readonly initialWindowSegments?: number;
  readonly rto?: RtoOptions;
}

/** Segment output and clock, provided by the TCP layer. */
export interface TcpHost {
  readonly clock: Clock;
  /** Our MSS towards `remote`: link MTU - 40 for IPv4, - 60 for IPv6. */
  localMssFor(remote: IpAddress): number;
  /** Sends a segment to the connection's peer; false when the link refused it (treated as a loss). */
  sendSegment(conn: TcpConnection, seg: TcpRepr): boolean;
  /** The connection reached CLOSED and can be forgotten. */
  released(conn: TcpConnection): void;
  /** A passive connection became ESTABLISHED (for the listener's accept queue). */
  established(conn: TcpConnection): void;
}

const EMPTY = new Uint8Array(0);

/** One connection's state. Created by the TCP layer. */
export class TcpConnection {
  state: TcpState;
  /** Error that ended the connection (reset, timeout), if any. */
  error: NetError | null = null;
  /** Called when readable data, writable space or the state may have changed. */
  onChange: () => void = () => {};
  /** True for connections created by a listener. */
  readonly passive: boolean;

  // Send sequence space (RFC 9293 section 3.3.1).
  readonly iss: number;
  sndUna: number;
  sndNxt: number;
  /** Highest sequence number sent + 1 (sndNxt goes back to sndUna on a timeout; this does not). */
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  sndShift = 0;
  sndMss = 536;
  /** Sequence number of sendBuf's first byte. */
  bufSeq: number;
  readonly sendBuf = new SendBuffer();
  /** The application asked to close its sending side. */
  finQueued = false;

  // Receive sequence space.
  irs = 0;
  rcvNxt = 0;
  rcvShift = 0;
  /** Right edge of the window last advertised (never moved left: RFC 9293 section 3.8.6.2.2). */
  rcvAdvEdge = 0;
  readonly readable: Uint8Array[] = [];
  readableBytes = 0;
  /** A FIN arrived in order: no more data will come. */
  finReceived = false;
  readonly ooo: ReassemblyBuffer;

  // Congestion control (RFC 5681).
  cwnd: number;
  ssthresh = 0x7fffffff;
  dupAcks = 0;
  /** End of the NewReno recovery episode (RFC 6582), or null outside recovery. */
  recover: number | null = null;

  readonly rto: RtoEstimator;
  #rttSeq: number | null = null;
  #rttStart = 0;
  #retries = 0;
  #rtxTimer: TimerHandle | null = null;
  #ackTimer: TimerHandle | null = null;
  #twTimer: TimerHandle | null = null;
  #kaTimer: TimerHandle | null = null;
  #kaProbes = 0;
  #unackedSegments = 0;
  /** Peer's options from its SYN. */
  peerSyn: { mss: number; windowScale: number | undefined; sackPermitted: boolean } | null = null;
  /** Both SYNs carried SACK-permitted: our ACKs report out-of-order blocks. */
  sackOk = false;
  /** Sequence number of the latest out-of-order segment (its block is reported first, RFC 2018 section 4). */
  #lastOoo: number | null = null;

  readonly receiveBufferSize: number;
  readonly sendBufferSize: number;
  /** Our MSS on this connection's path. */
  readonly localMss: number;
  readonly #cfg: Required<Omit<TcpConfig, 'rto'>>;

  constructor(
    readonly host: TcpHost,
    readonly localAddress: IpAddress,
    readonly localPort: number,
    readonly remoteAddress: IpAddress,
    readonly remotePort: number,
    iss: number,
    passive: boolean,
    cfg: TcpConfig = {},
  ) {
    this.#cfg = {
      receiveBuffer: cfg.receiveBuffer ?? 256 * 1024,
      sendBuffer: cfg.sendBuffer ?? 256 * 1024,
      ackDelayMs: cfg.ackDelayMs ?? 40,
      timeWaitMs: cfg.timeWaitMs ?? 60_000,
      synRetries: cfg.synRetries ?? 6,
      maxRetries: cfg.maxRetries ?? 15,
      initialWindowSegments: cfg.initialWindowSegments ?? 10,
      sack: cfg.sack ?? true,
      keepAliveMs: cfg.keepAliveMs ?? 0,
      keepAliveIntervalMs: cfg.keepAliveIntervalMs ?? 75_000,
      keepAliveProbes: cfg.keepAliveProbes ?? 9,
    };
    this.localMss = host.localMssFor(remoteAddress);
    this.receiveBufferSize = Math.max(1024, Math.min(this.#cfg.receiveBuffer, 0x3fffffff));
    this.sendBufferSize = Math.max(1024, this.#cfg.sendBuffer);
    this.ooo = new ReassemblyBuffer(this.receiveBufferSize);
    this.rto = new RtoEstimator(cfg.rto);
    this.passive = passive;
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.bufSeq = seqAdd(this.iss, 1);
    this.cwnd = this.#cfg.initialWindowSegments * 536;
    this.state = passive ? 'SYN-RECEIVED' : 'SYN-SENT';
    // Our window scale: the smallest shift that lets the buffer be advertised (RFC 7323 section 2.3, <= 14).
    let shift = 0;
    while (shift < 14 && this.receiveBufferSize >> shift > 0xffff) shift++;
    this.rcvShift = shift;
  }

  /** "a.b.c.d:p > e.f.g.h:q" for logs. */
  toString(): string {
    return `${formatEndpoint(this.localAddress, this.localPort)} > ${formatEndpoint(this.remoteAddress, this.remotePort)} ${this.state}`;
  }

  // ---------------------------------------------------------------- opening

  /** Active open: send the SYN (RFC 9293 section 3.10.1). */
  open(): void {
    this.#sendSyn();
  }

  /** Passive open: record the peer's SYN and answer with SYN-ACK (section 3.10.7.2). */
  acceptSyn(seg: TcpRepr): void {
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.#takeSynOptions(seg);
    this.#setWindow(seg);
    this.#sendSyn();
  }

  #takeSynOptions(seg: TcpRepr): void {
    const o = seg.options;
    // RFC 9293 section 3.7.1: without the option, assume 536.
    const mss = o.mss && o.mss > 0 ? o.mss : 536;
    this.peerSyn = { mss, windowScale: o.windowScale, sackPermitted: o.sackPermitted === true };
    this.sackOk = this.#cfg.sack && o.sackPermitted === true;
    this.sndMss = Math.max(64, Math.min(mss, this.localMss));
    this.cwnd = this.#cfg.initialWindowSegments * this.sndMss;
    if (o.windowScale === undefined) {
      // Scaling is on only when both SYNs carry the option (RFC 7323 section 2.2).
      this.sndShift = 0;
      this.rcvShift = 0;
    } else {
      this.sndShift = o.windowScale;
    }
  }

  #synOptions(): TcpOptions {
    const active = this.state === 'SYN-SENT';
    const wantScale = active || this.peerSyn?.windowScale !== undefined;
    const wantSack = this.#cfg.sack && (active || this.peerSyn?.sackPermitted === true);
    return {
      mss: this.localMss,
      ...(wantScale ? { windowScale: this.rcvShift } : {}),
      ...(wantSack ? { sackPermitted: true } : {}),
    };
  }

  #sendSyn(): void {
    const synAck = this.state === 'SYN-RECEIVED';
    const win = Math.min(0xffff, this.receiveBufferSize); // never scaled in a SYN (RFC 7323 section 2.2)
    this.rcvAdvEdge = seqAdd(this.rcvNxt, win);
    this.host.sendSegment(this, {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq: this.iss,
      ack: synAck ? this.rcvNxt : 0,
      flags: synAck ? TcpFlags.SYN | TcpFlags.ACK : TcpFlags.SYN,
      window: win,
      urgent: 0,
      options: this.#synOptions(),
      payload: EMPTY,
    });
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    if (this.#rttSeq === null && this.#retries === 0) {
      this.#rttSeq = this.sndNxt;
      this.#rttStart = this.host.clock.now();
    }
    this.#armRtx();
  }

  // ---------------------------------------------------------------- application side

  /** Free space in the send buffer. */
  get sendSpace(): number {
    return Math.max(0, this.sendBufferSize - this.sendBuf.length);
  }

  /** True while the application may still queue data. */
  get writable(): boolean {
    return (
      !this.finQueued &&
      (this.state === 'SYN-SENT' ||
        this.state === 'SYN-RECEIVED' ||
        this.state === 'ESTABLISHED' ||
        this.state === 'CLOSE-WAIT')
    );
  }

  /** Queues as much of `data` as fits; returns the bytes taken. */
  queue(data: Uint8Array): number {
    if (!this.writable) return 0;
    const n = Math.min(data.length, this.sendSpace);
    if (n > 0) {
      this.sendBuf.push(data.subarray(0, n));
      this.output();
    }
    return n;
  }

  /** Takes the next readable chunk and reopens the window as the buffer drains. */
  take(): Uint8Array | null {
    const c = this.readable.shift();
    if (!c) return null;
    this.readableBytes -= c.length;
    this.#maybeWindowUpdate();
    return c;
  }

  /** Half-close: send FIN once queued data has gone (RFC 9293 section 3.10.4). */
  shutdown(): void {
    if (this.finQueued) return;
    switch (this.state) {
      case 'SYN-SENT':
        this.#release(null);
        return;
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.finQueued = true;
        this.state = 'FIN-WAIT-1';
        break;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.state = 'LAST-ACK';
        break;
      default:
        return;
    }
    this.output();
    this.onChange();
  }

  /** Abort: send RST if synchronized and drop everything (section 3.10.5). */
  abort(reason: NetError | null = null): void {
    if (this.state === 'CLOSED') return;
    if (this.state !== 'SYN-SENT' && this.state !== 'TIME-WAIT') {
      this.host.sendSegment(this, this.#segment(TcpFlags.RST | TcpFlags.ACK, this.sndMax, EMPTY));
    }
    this.#release(reason);
  }

  // ---------------------------------------------------------------- output

  #window(): number {
    // Receiver-side silly window avoidance (RFC 9293 section 3.8.6.2.2): grow the advertised edge only in
    // steps of at least min(buffer/2, MSS); never move it left.
    const free = Math.max(0, this.receiveBufferSize - this.readableBytes - this.ooo.bytes);
    let current = seqDiff(this.rcvAdvEdge, this.rcvNxt);
    if (current < 0 || current > this.receiveBufferSize) {
      // Cannot happen when the edge is kept right; recover instead of advertising garbage.
      this.rcvAdvEdge = this.rcvNxt;
      current = 0;
    }
    const step = Math.min(this.receiveBufferSize >> 1, this.localMss);
    let wnd = current;
    if (free >= current + step || (free > current && free >= this.receiveBufferSize >> 1)) wnd = free;
    wnd = Math.min(wnd, 0xffff << this.rcvShift);
    // Round down to the scale unit so the edge we record is exactly what the peer sees.
    wnd = (wnd >> this.rcvShift) << this.rcvShift;
    if (seqGt(seqAdd(this.rcvNxt, wnd), this.rcvAdvEdge)) this.rcvAdvEdge = seqAdd(this.rcvNxt, wnd);
    return Math.min(0xffff, Math.max(0, seqDiff(this.rcvAdvEdge, this.rcvNxt)) >> this.rcvShift);
  }

  #segment(flags: number, seq: number, payload: Uint8Array): TcpRepr {
    return {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq,
      ack: flags & TcpFlags.ACK ? this.rcvNxt : 0,
      flags,
      window: flags & TcpFlags.RST ? 0 : this.#window(),
      urgent: 0,
      options: {},
      payload,
    };
  }

  /**
   * Sends a bare ACK now. Its sequence number is SND.MAX, not a rewound SND.NXT: after a timeout the peer may
   * already hold everything up to SND.MAX and would find an older number unacceptable (as Linux's snd_nxt,
   * which never rewinds).
   */
  sendAck(): void {
    this.#clearAckTimer();
    this.#unackedSegments = 0;
    const seg = this.#segment(TcpFlags.ACK, this.sndMax, EMPTY);
    this.host.sendSegment(
      this,
      this.sackOk && this.ooo.count > 0 ? { ...seg, options: { sackBlocks: this.#sackBlocks() } } : seg,
    );
  }

  /** Up to four blocks (the most without timestamps), the one holding the latest arrival first. */
  #sackBlocks(): { left: number; right: number }[] {
    const all = this.ooo.blocks();
    const last = this.#lastOoo;
    const i = last === null ? -1 : all.findIndex((b) => seqLe(b.left, last) && seqLt(last, b.right));
    if (i > 0) all.unshift(...all.splice(i, 1));
    return all.slice(0, 4);
  }

  #lastInvalidAck = Number.NEGATIVE_INFINITY;

  /**
   * Answers an unacceptable segment with an ACK. For segments without data the answer is rate-limited (as
   * Linux's tcp_invalid_ratelimit and RFC 5961 section 7 advise) so two confused ends cannot ACK each other
   * forever.
   */
  #ackInvalid(segLen: number): void {
    const now = this.host.clock.now();
    if (segLen === 0 && now - this.#lastInvalidAck < 200) return;
    this.#lastInvalidAck = now;
    this.sendAck();
  }

  get #finSeq(): number {
    return seqAdd(this.bufSeq, this.sendBuf.length);
  }

  #synchronized(): boolean {
    return this.state !== 'SYN-SENT' && this.state !== 'SYN-RECEIVED' && this.state !== 'CLOSED';
  }

  /** Sends what the windows allow (RFC 9293 section 3.8.6.2.1 and RFC 5681). */
  output(): void {
    if (!this.#synchronized() || this.state === 'TIME-WAIT') return;
    let sent = false;
    for (;;) {
      const inflight = seqDiff(this.sndNxt, this.sndUna);
      const offset = seqDiff(this.sndNxt, this.bufSeq);
      const avail = this.sendBuf.length - offset;
      const wnd = Math.min(this.sndWnd, this.cwnd);
      if (avail > 0) {
        let usable = wnd - inflight;
        // Zero-window probing (section 3.8.6.1): with nothing in flight and a closed window, the persist
        // timer (our retransmission timer) lets one byte through.
        if (usable <= 0 && this.sndWnd === 0 && inflight === 0 && this.#probeAllowed) {
          usable = 1;
          this.#probeAllowed = false;
        }
        if (usable <= 0) break;
        const len = Math.min(avail, usable, this.sndMss);
        // Sender SWS avoidance: don't send a small segment while more is queued and data is in flight.
        if (len < this.sndMss && len < avail && inflight > 0) break;
        const last = len === avail;
        const fin = last && this.finQueued;
        const payload = this.sendBuf.read(offset, len);
        let flags = TcpFlags.ACK;
        if (last) flags |= TcpFlags.PSH;
        if (fin) flags |= TcpFlags.FIN;
        if (!this.#transmit(flags, this.sndNxt, payload)) break;
        sent = true;
        continue;
      }
      if (
        this.finQueued &&
        this.sndNxt === this.#finSeq &&
        this.#transmit(TcpFlags.ACK | TcpFlags.FIN, this.sndNxt, EMPTY)
      ) {
        sent = true;
      }
      break;
    }
    if (sent) this.#armRtx();
    else if (this.sendBuf.length > seqDiff(this.sndNxt, this.bufSeq) && (this.sndWnd === 0 || this.#linkRefusing)) {
      this.#armRtx();
    }
  }

  #probeAllowed = false;

  /** Sends a segment; false when the link refused it (then nothing advances and output retries shortly). */
  #transmit(flags: number, seq: number, payload: Uint8Array): boolean {
    const seg = this.#segment(flags, seq, payload);
    const len = tcpSegmentLength(seg);
    const end = seqAdd(seq, len);
    if (!this.host.sendSegment(this, seg)) {
      this.#linkRefusing = true;
      this.#linkBusy();
      return false;
    }
    this.#linkRefusing = false;
    this.#busyDelay = 1;
    // Karn: time only segments sent for the first time.
    if (this.#rttSeq === null && seqGe(seq, this.sndMax) && len > 0) {
      this.#rttSeq = end;
      this.#rttStart = this.host.clock.now();
    }
    this.#clearAckTimer();
    this.#unackedSegments = 0;
    if (seq === this.sndNxt) this.sndNxt = end;
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    return true;
  }

  #busyTimer: TimerHandle | null = null;
  /** The last transmit was refused by the link; the retransmission timer then bounds how long we keep trying. */
  #linkRefusing = false;
  /** Doubles while the link keeps refusing (a dead link must not spin a 1 ms loop), up to 128 ms. */
  #busyDelay = 1;

  /**
   * The link refused a frame (its transmit queue is full: a local condition, not loss on the path). Rather
   * than wait a whole RTO, try again in a millisecond (backing off while refusals continue), without touching
   * the congestion state.
   */
  #linkBusy(): void {
    if (this.#busyTimer) return;
    const delay = this.#busyDelay;
    this.#busyDelay = Math.min(128, delay * 2);
    this.#busyTimer = this.host.clock.setTimer(delay, () => {
      this.#busyTimer = null;
      if (this.state !== 'CLOSED') this.output();
    });
  }

  #armRtx(): void {
    if (this.#rtxTimer) return;
    this.#rtxTimer = this.host.clock.setTimer(this.rto.rto, () => {
      this.#rtxTimer = null;
      this.#onRtxTimeout();
    });
  }

  #restartRtx(): void {
    if (this.#rtxTimer) this.host.clock.clearTimer(this.#rtxTimer);
    this.#rtxTimer = null;
    const outstanding = seqDiff(this.sndMax, this.sndUna) > 0;
    const waitingOnWindow = this.sendBuf.length > seqDiff(this.sndNxt, this.bufSeq) && this.sndWnd === 0;
    if (outstanding || waitingOnWindow) this.#armRtx();
  }

  #onRtxTimeout(): void {
    if (this.state === 'CLOSED' || this.state === 'TIME-WAIT') return;
    const outstanding = seqDiff(this.sndMax, this.sndUna) > 0;
    if (!outstanding && this.#linkRefusing) {
      // Nothing could even leave: a link that keeps refusing counts like unanswered retransmissions.
      this.#retries++;
      if (this.#retries > this.#cfg.maxRetries) {
        this.abort(
          new NetError(
            'EXO_ERR_NET_TIMEOUT',
            `${formatEndpoint(this.remoteAddress, this.remotePort)}: the link refused every frame for ${this.#retries - 1} timeouts`,
          ),
        );
        return;
      }
      this.rto.backoff();
      this.output();
      this.#armRtx();
      return;
    }
    if (!outstanding) {
      // Persist timer: the peer's window is closed; probe it (RFC 9293 section 3.8.6.1), backing off.
      if (this.sendBuf.length > 0 && this.sndWnd === 0) {
        this.rto.backoff();
        this.#probeAllowed = true;
        this.output();
        this.#armRtx();
      }
      return;
    }
    this.#retries++;
    const limit =
      this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED' ? this.#cfg.synRetries : this.#cfg.maxRetries;
    if (this.#retries > limit) {
      const err = new NetError(
        'EXO_ERR_NET_TIMEOUT',
        `${this.state === 'SYN-SENT' ? 'connect' : 'connection'} to ${formatEndpoint(this.remoteAddress, this.remotePort)} timed out after ${this.#retries - 1} retransmissions`,
      );
      this.abort(err);
      return;
    }
    // RFC 6298 section 5.5-5.6: back off and retransmit the earliest unacknowledged segment. Karn: no sample.
    this.counters.timeouts++;
    this.rto.backoff();
    this.#rttSeq = null;
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') {
      this.#sendSyn();
      return;
    }
    // RFC 5681 section 3.1 equation (4), then restart from SND.UNA with one segment (go-back-N).
    const flight = seqDiff(this.sndMax, this.sndUna);
    this.ssthresh = Math.max(flight >> 1, 2 * this.sndMss);
    this.cwnd = this.sndMss;
    this.recover = null;
    this.dupAcks = 0;
    // RFC 2018 section 8: after a timeout the receiver may have reneged: forget what it reported.
    this.#sacked = [];
    this.sndNxt = this.sndUna;
    if (this.sndWnd === 0) this.#probeAllowed = true;
    this.output();
    this.#armRtx();
  }

  #clearAckTimer(): void {
    if (this.#ackTimer) this.host.clock.clearTimer(this.#ackTimer);
    this.#ackTimer = null;
  }

  #scheduleAck(now: boolean): void {
    this.#unackedSegments++;
    // RFC 9293 section 3.8.6.3 / RFC 5681 section 4.2: ACK at least every second full segment.
    if (now || this.#unackedSegments >= 2) {
      this.sendAck();
      return;
    }
    if (!this.#ackTimer) {
      this.#ackTimer = this.host.clock.setTimer(this.#cfg.ackDelayMs, () => {
        this.#ackTimer = null;
        if (this.state !== 'CLOSED') this.sendAck();
      });
    }
  }

  #maybeWindowUpdate(): void {
    if (!this.#synchronized() || this.finReceived) return;
    const before = seqDiff(this.rcvAdvEdge, this.rcvNxt);
    const free = this.receiveBufferSize - this.readableBytes - this.ooo.bytes;
    // Announce a reopened window once it grew by two segments or half the buffer (RFC 1122 4.2.3.3).
    if (free - before >= Math.min(this.receiveBufferSize >> 1, 2 * this.localMss)) this.sendAck();
  }

  // ---------------------------------------------------------------- input

  #setWindow(seg: TcpRepr): void {
    // SYN windows are unscaled (RFC 7323 section 2.2).
    this.sndWnd = seg.flags & TcpFlags.SYN ? seg.window : seg.window << this.sndShift;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
  }

  /** Segment arrival (RFC 9293 section 3.10.7.3 for SYN-SENT, 3.10.7.4 otherwise). */
  input(seg: TcpRepr): void {
    this.#kaProbes = 0;
    if (this.#cfg.keepAliveMs > 0) this.#armKeepAlive(this.#cfg.keepAliveMs);
    if (this.state === 'SYN-SENT') {
      this.#inputSynSent(seg);
      return;
    }
    if (this.state === 'CLOSED') return;
    if (this.state === 'SYN-RECEIVED' && seg.flags & TcpFlags.SYN && !(seg.flags & TcpFlags.ACK)) {
      if (seg.seq === this.irs) this.#sendSyn(); // a retransmitted SYN: our SYN-ACK was lost
      return;
    }
    const segLen = tcpSegmentLength(seg);
    const rcvWnd = Math.max(0, seqDiff(this.rcvAdvEdge, this.rcvNxt));

    // First: sequence number acceptability (the four cases of section 3.10.7.4).
    let acceptable: boolean;
    if (segLen === 0) {
      acceptable =
        rcvWnd === 0
          ? seg.seq === this.rcvNxt
          : seqLe(this.rcvNxt, seg.seq) && seqLt(seg.seq, seqAdd(this.rcvNxt, rcvWnd));
    } else if (rcvWnd === 0) {
      acceptable = false;
    } else {
      const last = seqAdd(seg.seq, segLen - 1);
      const end = seqAdd(this.rcvNxt, rcvWnd);
      acceptable =
        (seqLe(this.rcvNxt, seg.seq) && seqLt(seg.seq, end)) || (seqLe(this.rcvNxt, last) && seqLt(last, end));
    }
    // A zero window still takes ACKs and RSTs at RCV.NXT (section 3.10.7.4 note).
    if (!acceptable && rcvWnd === 0 && seg.seq === this.rcvNxt) acceptable = true;
    if (!acceptable) {
      if (!(seg.flags & TcpFlags.RST)) this.#ackInvalid(segLen);
      if (this.state === 'TIME-WAIT' && seg.flags & TcpFlags.FIN) this.#enterTimeWait();
      return;
    }

    // Second: RST (RFC 5961 section 3.2: exact match resets, otherwise a challenge ACK).
    if (seg.flags & TcpFlags.RST) {
      if (seg.seq !== this.rcvNxt) {
        this.#ackInvalid(0);
        return;
      }
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        this.#release(null);
        return;
      }
      const err =
        this.state === 'TIME-WAIT' || this.state === 'LAST-ACK' || this.state === 'CLOSING'
          ? null
          : new NetError(
              'EXO_ERR_NET_CONNECTION_RESET',
              `connection reset by ${formatEndpoint(this.remoteAddress, this.remotePort)}`,
            );
      this.#release(err);
      return;
    }

    // Fourth: SYN in a synchronized state: challenge ACK (RFC 5961 section 4.2).
    if (seg.flags & TcpFlags.SYN) {
      this.#ackInvalid(0);
      return;
    }

    // Fifth: the ACK field.
    if (!(seg.flags & TcpFlags.ACK)) return;
    if (this.state === 'SYN-RECEIVED') {
      if (seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax)) {
        this.state = 'ESTABLISHED';
        this.sndUna = seg.ack;
        this.#retries = 0;
        this.#setWindow(seg);
        this.#sampleRtt(seg.ack);
        this.#restartRtx();
        this.host.established(this);
        this.onChange();
      } else {
        this.host.sendSegment(this, { ...this.#segment(TcpFlags.RST, seg.ack, EMPTY), ack: 0 });
        return;
      }
    }
    if (!this.#processAck(seg)) return;

    // Seventh: segment text.
    let needAck = false;
    let immediate = false;
    if (
      seg.payload.length > 0 &&
      (this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2')
    ) {
      needAck = true;
      immediate = this.#acceptText(seg) || immediate;
    }

    // Eighth: FIN (only when everything before it has arrived).
    if (seg.flags & TcpFlags.FIN) {
      const finSeq = seqAdd(seg.seq, seg.payload.length);
      if (finSeq === this.rcvNxt) this.#acceptFin();
      else if (seqGt(finSeq, this.rcvNxt)) this.ooo.finSeq = finSeq;
      needAck = true;
      immediate = true;
    }
    if (needAck) this.#scheduleAck(immediate);
    this.output();
  }

  /** Returns true when the segment was out of order (so it needs an immediate, duplicate ACK). */
  #acceptText(seg: TcpRepr): boolean {
    let seq = seg.seq;
    let data = seg.payload;
    // Trim what we already have (before RCV.NXT) and what lies beyond the advertised window.
    const dup = seqDiff(this.rcvNxt, seq);
    if (dup > 0) {
      data = data.subarray(Math.min(dup, data.length));
      seq = this.rcvNxt;
    }
    const room = seqDiff(this.rcvAdvEdge, seq);
    if (data.length > room) data = data.subarray(0, Math.max(0, room));
    if (data.length === 0) return true;
    if (seq !== this.rcvNxt) {
      this.ooo.insert(seq, data);
      this.#lastOoo = seq;
      return true;
    }
    this.#deliver(data.slice());
    let filledGap = false;
    for (const d of this.ooo.take(this.rcvNxt)) {
      this.#deliver(d);
      filledGap = true;
    }
    if (this.ooo.finSeq >= 0 && this.ooo.finSeq === this.rcvNxt) {
      this.ooo.finSeq = -1;
      this.#acceptFin();
      filledGap = true;
    }
    this.onChange();
    // RFC 5681 section 4.2: ACK immediately when a segment fills (part of) a gap.
    return filledGap;
  }

  #deliver(d: Uint8Array): void {
    this.readable.push(d);
    this.readableBytes += d.length;
    this.rcvNxt = seqAdd(this.rcvNxt, d.length);
  }

  #acceptFin(): void {
    if (this.finReceived) {
      if (this.state === 'TIME-WAIT') this.#enterTimeWait();
      return;
    }
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.state = 'CLOSE-WAIT';
        break;
      case 'FIN-WAIT-1':
        // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2).
        this.state = 'CLOSING';
        break;
      case 'FIN-WAIT-2':
        this.#enterTimeWait();
        break;
      default:
        break;
    }
    this.onChange();
  }

  #sampleRtt(ack: number): void {
    if (this.#rttSeq !== null && seqGe(ack, this.#rttSeq)) {
      this.rto.sample(this.host.clock.now() - this.#rttStart);
      this.#rttSeq = null;
    }
  }

  /** ACK processing for synchronized states; false when the segment must be dropped. */
  #processAck(seg: TcpRepr): boolean {
    const ack = seg.ack;
    if (seqGt(ack, this.sndMax)) {
      // Acknowledges something not yet sent (section 3.10.7.4): ACK and drop.
      this.sendAck();
      return false;
    }
    if (this.state === 'TIME-WAIT') {
      if (seg.flags & TcpFlags.FIN) this.#enterTimeWait();
      return true;
    }
    const flight = seqDiff(this.sndMax, this.sndUna);
    this.#takeSack(seg);
    if (seqGt(ack, this.sndUna)) {
      const acked = seqDiff(ack, this.sndUna);
      // Data bytes acknowledged (the FIN's sequence number is not in the buffer).
      const dataAcked = Math.max(0, Math.min(seqDiff(ack, this.bufSeq), this.sendBuf.length));
      this.sendBuf.consume(dataAcked);
      this.bufSeq = seqAdd(this.bufSeq, dataAcked);
      this.sndUna = ack;
      if (seqLt(this.sndNxt, this.sndUna)) this.sndNxt = this.sndUna;
      this.#pruneSack();
      this.#retries = 0;
      this.rto.resetBackoff();
      this.#sampleRtt(ack);
      // Congestion control: slow start / congestion avoidance (RFC 5681 section 3.1), NewReno (RFC 6582).
      if (this.recover !== null) {
        if (seqGe(ack, this.recover)) {
          this.cwnd = Math.min(this.ssthresh, Math.max(flight - acked, 0) + this.sndMss);
          this.recover = null;
        } else {
          // Partial ACK: retransmit the next hole, deflate by the amount acknowledged. With SACK the hole at
          // SND.UNA may already have been resent; then the next unresent one goes.
          if (!(this.#sacked.length > 0 && seqGt(this.#rexmitNext, this.sndUna) && this.#retransmitHole())) {
            this.#retransmitFirst();
            this.#rexmitNext = seqMax(this.#rexmitNext, seqAdd(this.sndUna, this.sndMss));
          }
          this.cwnd = Math.max(this.sndMss, this.cwnd - acked + this.sndMss);
        }
      } else if (this.cwnd < this.ssthresh) {
        this.cwnd += Math.min(acked, this.sndMss);
      } else {
        this.cwnd += Math.max(1, Math.floor((this.sndMss * this.sndMss) / this.cwnd));
      }
      this.dupAcks = 0;
      this.#restartRtx();
      this.onChange();
    } else if (
      ack === this.sndUna &&
      flight > 0 &&
      seg.payload.length === 0 &&
      !(seg.flags & (TcpFlags.SYN | TcpFlags.FIN)) &&
      seg.window << this.sndShift === this.sndWnd
    ) {
      // Duplicate ACK (RFC 5681 section 2).
      this.dupAcks++;
      if (this.dupAcks === 3 && this.recover === null) {
        this.ssthresh = Math.max(flight >> 1, 2 * this.sndMss);
        this.recover = this.sndMax;
        this.counters.fastRetransmits++;
        this.#retransmitFirst();
        this.#rexmitNext = seqAdd(this.sndUna, this.sndMss);
        this.cwnd = this.ssthresh + 3 * this.sndMss;
      } else if (this.dupAcks > 3 && this.recover !== null) {
        this.cwnd += this.sndMss;
        // Each further duplicate ACK means a segment left the network: use it to resend the next hole the
        // peer's SACK blocks reveal (a simplified RFC 6675), instead of one hole per round trip.
        if (this.#sacked.length > 0) this.#retransmitHole();
      }
    }
    // Window update (section 3.10.7.4: only from newer segments, SND.WL1/WL2).
    if (
      seqLt(this.sndWl1, seg.seq) ||
      (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack)) ||
      seqGt(ack, this.sndWl2)
    ) {
      const before = this.sndWnd;
      this.sndWnd = seg.window << this.sndShift;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (before === 0 && this.sndWnd > 0) this.onChange();
    }
    // State changes once our FIN is acknowledged.
    const finAcked = this.finQueued && seqGt(this.sndMax, this.#finSeq) && seqGt(ack, this.#finSeq);
    if (finAcked) {
      switch (this.state) {
        case 'FIN-WAIT-1':
          this.state = 'FIN-WAIT-2';
          this.onChange();
          break;
        case 'CLOSING':
          this.#enterTimeWait();
          break;
        case 'LAST-ACK':
          this.#release(null);
          return false;
        default:
          break;
      }
    }
    return true;
  }

  /** Counters of loss recovery, for tests and status output. */
  readonly counters = { timeouts: 0, fastRetransmits: 0, sackRetransmits: 0 };

  /** Ranges beyond SND.UNA the peer reported holding (RFC 2018), sorted and merged. */
  #sacked: { left: number; right: number }[] = [];
  /** Where the next SACK-driven retransmission of this recovery may start. */
  #rexmitNext = 0;

  #takeSack(seg: TcpRepr): void {
    const blocks = seg.options.sackBlocks;
    if (!this.sackOk || !blocks) return;
    for (const b of blocks) {
      // Only blocks inside what we sent and beyond SND.UNA count (D-SACKs and bogus blocks are ignored).
      if (!(seqLt(this.sndUna, b.left) && seqLt(b.left, b.right) && seqLe(b.right, this.sndMax))) continue;
      const merged: { left: number; right: number }[] = [];
      let cur = { left: b.left, right: b.right };
      for (const x of this.#sacked) {
        if (seqLt(x.right, cur.left)) merged.push(x);
        else if (seqLt(cur.right, x.left)) {
          merged.push(cur);
          cur = x;
        } else cur = { left: seqLt(x.left, cur.left) ? x.left : cur.left, right: seqMax(x.right, cur.right) };
      }
      merged.push(cur);
      merged.sort((p, q) => seqDiff(p.left, q.left));
      this.#sacked = merged.slice(-32); // bounded: a hostile peer cannot grow it
    }
  }

  #pruneSack(): void {
    if (this.#sacked.length === 0) return;
    const una = this.sndUna;
    this.#sacked = this.#sacked
      .filter((b) => seqGt(b.right, una))
      .map((b) => (seqLt(b.left, una) ? { left: una, right: b.right } : b));
  }

  /** Resends the lowest unsent-again hole below the highest SACKed byte; false when there is none. */
  #retransmitHole(): boolean {
    let start = seqMax(this.sndUna, this.#rexmitNext);
    for (const b of this.#sacked) {
      if (seqLe(b.right, start)) continue;
      if (seqLe(b.left, start)) {
        start = b.right;
        continue;
      }
      const offset = seqDiff(start, this.bufSeq);
      const len = Math.min(this.sndMss, seqDiff(b.left, start), this.sendBuf.length - offset);
      if (offset < 0 || len <= 0) return false;
      this.#rttSeq = null;
      if (!this.#transmit(TcpFlags.ACK, start, this.sendBuf.read(offset, len))) return false;
      this.#rexmitNext = seqAdd(start, len);
      this.counters.sackRetransmits++;
      return true;
    }
    return false;
  }

  #retransmitFirst(): void {
    const offset = seqDiff(this.sndUna, this.bufSeq);
    if (offset < 0) return;
    const len = Math.min(this.sndMss, this.sendBuf.length - offset);
    const fin = this.finQueued && offset + Math.max(len, 0) === this.sendBuf.length;
    if (len <= 0 && !fin) return;
    this.#rttSeq = null;
    let flags = TcpFlags.ACK;
    if (fin) flags |= TcpFlags.FIN;
    this.#transmit(flags, this.sndUna, len > 0 ? this.sendBuf.read(offset, len) : EMPTY);
  }

  #inputSynSent(seg: TcpRepr): void {
    // RFC 9293 section 3.10.7.3.
    const ackOk = seqGt(seg.ack, this.iss) && seqLe(seg.ack, this.sndMax);
    if (seg.flags & TcpFlags.ACK && !ackOk) {
      if (!(seg.flags & TcpFlags.RST)) {
        this.host.sendSegment(this, { ...this.#segment(TcpFlags.RST, seg.ack, EMPTY), ack: 0 });
      }
      return;
    }
    if (seg.flags & TcpFlags.RST) {
      if (seg.flags & TcpFlags.ACK) {
        this.#release(
          new NetError(
            'EXO_ERR_NET_CONNECTION_REFUSED',
            `connection refused by ${formatEndpoint(this.remoteAddress, this.remotePort)}`,
          ),
        );
      }
      return;
    }
    if (!(seg.flags & TcpFlags.SYN)) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    // Our SYN's window was relative to a then unknown RCV.NXT: anchor it now.
    this.rcvAdvEdge = seqAdd(this.rcvNxt, Math.min(0xffff, this.receiveBufferSize));
    this.#takeSynOptions(seg);
    if (seg.flags & TcpFlags.ACK) {
      this.sndUna = seg.ack;
      this.#sampleRtt(seg.ack);
      this.#retries = 0;
      this.state = 'ESTABLISHED';
      this.#setWindow(seg);
      // After the handshake, windows in non-SYN segments are scaled; this first one is SYN, so unscaled.
      this.#restartRtx();
      this.sendAck();
      this.output();
      this.onChange();
      return;
    }
    // Simultaneous open (section 3.5): answer with SYN-ACK.
    this.state = 'SYN-RECEIVED';
    this.#sendSyn();
  }

  #armKeepAlive(ms: number): void {
    if (this.#kaTimer) this.host.clock.clearTimer(this.#kaTimer);
    this.#kaTimer = this.host.clock.setTimer(ms, () => {
      this.#kaTimer = null;
      this.#keepAlive();
    });
  }

  #keepAlive(): void {
    if (this.state !== 'ESTABLISHED' && this.state !== 'CLOSE-WAIT') return;
    if (this.#kaProbes >= this.#cfg.keepAliveProbes) {
      this.abort(
        new NetError(
          'EXO_ERR_NET_TIMEOUT',
          `${formatEndpoint(this.remoteAddress, this.remotePort)} did not answer ${this.#kaProbes} keep-alive probes`,
        ),
      );
      return;
    }
    // Only while nothing is outstanding (retransmissions then do the probing); the probe carries SND.UNA - 1,
    // an old sequence number that makes the peer answer with an ACK without taking any data.
    if (seqDiff(this.sndMax, this.sndUna) === 0) {
      this.#kaProbes++;
      this.host.sendSegment(this, this.#segment(TcpFlags.ACK, seqAdd(this.sndUna, -1), EMPTY));
    }
    this.#armKeepAlive(this.#cfg.keepAliveIntervalMs);
  }

  #enterTimeWait(): void {
    this.state = 'TIME-WAIT';
    if (this.#rtxTimer) this.host.clock.clearTimer(this.#rtxTimer);
    this.#rtxTimer = null;
    this.#clearAckTimer();
    if (this.#twTimer) this.host.clock.clearTimer(this.#twTimer);
    this.#twTimer = this.host.clock.setTimer(this.#cfg.timeWaitMs, () => {
      this.#twTimer = null;
      this.#release(null);
    });
    this.onChange();
  }

  #release(err: NetError | null): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    if (err && !this.error) this.error = err;
    for (const t of [this.#rtxTimer, this.#ackTimer, this.#twTimer, this.#kaTimer, this.#busyTimer]) {
      if (t) this.host.clock.clearTimer(t);
    }
    this.#busyTimer = null;
    this.#kaTimer = null;
    this.#rtxTimer = null;
    this.#ackTimer = null;
    this.#twTimer = null;
    this.host.released(this);
    this.onChange();
  }
}
