/**
 * A wrapper link that injects faults deterministically (after smoltcp's FaultInjector): drops, reordering and
 * duplication decided by frame counters and a seeded generator, so a failing run can be replayed exactly.
 */
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import type { FrameHandler, FrameLink } from './frame-link.ts';

/** Which frames to disturb in one direction. Counters start at 1 for the first frame. */
export interface FaultPlan {
  /** Drop frames whose ordinal is in this set. */
  readonly dropFrames?: readonly number[];
  /** Drop each frame with this probability (from the seeded generator). */
  readonly dropRate?: number;
  /** Hold each frame with this probability and release it after the next frame (or after `holdMs`). */
  readonly reorderRate?: number;
  /** Send each frame twice with this probability. */
  readonly duplicateRate?: number;
  /** Decides per frame, after the rules above; return 'drop' | 'hold' | 'dup' | 'pass'. */
  readonly decide?: (frame: Uint8Array, ordinal: number) => 'drop' | 'hold' | 'dup' | 'pass';
}

/** Options of {@link FaultInjectingLink}. */
export interface FaultLinkOptions {
  /** Faults on frames the stack sends. */
  readonly tx?: FaultPlan;
  /** Faults on frames the stack receives. */
  readonly rx?: FaultPlan;
  /** Seed of the generator (mulberry32). */
  readonly seed?: number;
  /** How long a held frame waits for a successor before it is released anyway. */
  readonly holdMs?: number;
  readonly clock?: Clock;
}

/** Counters of what the injector did, for assertions. */
export interface FaultStats {
  txFrames: number;
  rxFrames: number;
  dropped: number;
  reordered: number;
  duplicated: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Direction {
  count = 0;
  held: Uint8Array | null = null;
  timer: ReturnType<Clock['setTimer']> | null = null;
  constructor(
    readonly plan: FaultPlan,
    readonly rand: () => number,
    readonly stats: FaultStats,
    readonly clock: Clock,
    readonly holdMs: number,
    readonly out: (f: Uint8Array) => void,
  ) {}

  pass(frame: Uint8Array): void {
    const n = ++this.count;
    const p = this.plan;
    // Draw every random number unconditionally so the sequence of decisions depends only on the ordinal.
    const rDrop = this.rand();
    const rHold = this.rand();
    const rDup = this.rand();
    let action: 'drop' | 'hold' | 'dup' | 'pass' = 'pass';
    if (p.dropFrames?.includes(n) || (p.dropRate !== undefined && rDrop < p.dropRate)) action = 'drop';
    else if (p.reorderRate !== undefined && rHold < p.reorderRate) action = 'hold';
    else if (p.duplicateRate !== undefined && rDup < p.duplicateRate) action = 'dup';
    if (p.decide && action === 'pass') action = p.decide(frame, n);
    if (action === 'drop') {
      this.stats.dropped++;
      return;
    }
    if (action === 'hold' && this.held === null) {
      this.stats.reordered++;
      this.held = frame.slice();
      this.timer = this.clock.setTimer(this.holdMs, () => this.release());
      return;
    }
    this.out(frame);
    if (action === 'dup') {
      this.stats.duplicated++;
      this.out(frame);
    }
    this.release();
  }

  release(): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = null;
    const h = this.held;
    this.held = null;
    if (h) this.out(h);
  }
}

/** Wraps a link, disturbing frames in either direction per its plans. */
export class FaultInjectingLink implements FrameLink {
  readonly stats: FaultStats = { txFrames: 0, rxFrames: 0, dropped: 0, reordered: 0, duplicated: 0 };
  readonly #inner: FrameLink;
  readonly #tx: Direction;
  readonly #rx: Direction;
  #handler: FrameHandler | null = null;
  #enabled = true;

  constructor(inner: FrameLink, opts: FaultLinkOptions = {}) {
    this.#inner = inner;
    const rand = mulberry32(opts.seed ?? 1);
    const clock = opts.clock ?? systemClock();
    const holdMs = opts.holdMs ?? 5;
    this.#tx = new Direction(opts.tx ?? {}, rand, this.stats, clock, holdMs, (f) => {
      inner.send(f);
    });
    this.#rx = new Direction(opts.rx ?? {}, rand, this.stats, clock, holdMs, (f) => this.#handler?.([f]));
    inner.onFrames((frames) => {
      for (const f of frames) {
        this.stats.rxFrames++;
        if (this.#enabled) this.#rx.pass(f);
        else this.#handler?.([f]);
      }
    });
  }
  get mac() {
    return this.#inner.mac;
  }
  get mtu(): number {
    return this.#inner.mtu;
  }
  /** Turns fault injection on or off (frames pass untouched while off). */
  setEnabled(on: boolean): void {
    this.#enabled = on;
    if (!on) {
      this.#tx.release();
      this.#rx.release();
    }
  }
  send(frame: Uint8Array): boolean {
    this.stats.txFrames++;
    if (this.#enabled) this.#tx.pass(frame);
    else return this.#inner.send(frame);
    return true;
  }
  onFrames(handler: FrameHandler): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = null;
    };
  }
  close(): void {
    this.#tx.release();
    this.#inner.close?.();
  }
}
