/**
 * Time for the stack, injectable so tests run deterministically: every timer the stack arms (ARP retries,
 * TCP retransmission, delayed ACK, TIME-WAIT) goes through a {@link Clock}.
 */

/** An armed timer; pass it back to {@link Clock.clearTimer}. */
export interface TimerHandle {
  readonly id: number;
}

/** Milliseconds and one-shot timers. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `cb` once after `ms` milliseconds. */
  setTimer(ms: number, cb: () => void): TimerHandle;
  /** Cancels a timer; harmless when it already fired or was cleared. */
  clearTimer(handle: TimerHandle): void;
}

/** The real clock: performance.now() and setTimeout (unref'd, so idle stacks don't hold the process open). */
export function systemClock(): Clock {
  const timers = new Map<number, ReturnType<typeof setTimeout>>();
  let next = 1;
  return {
    now: () => performance.now(),
    setTimer(ms, cb) {
      const id = next++;
      const t = setTimeout(
        () => {
          timers.delete(id);
          cb();
        },
        Math.max(0, ms),
      );
      t.unref?.();
      timers.set(id, t);
      return { id };
    },
    clearTimer(h) {
      const t = timers.get(h.id);
      if (t !== undefined) {
        clearTimeout(t);
        timers.delete(h.id);
      }
    },
  };
}

/**
 * A clock that only moves when told to: {@link ManualClock.advance} runs due timers in order of their due
 * time (then of arming). For deterministic tests.
 */
export class ManualClock implements Clock {
  #now = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; cb: () => void }>();

  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimer(ms: number, cb: () => void): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), cb });
    return { id };
  }
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }
  /** Number of armed timers. */
  get pending(): number {
    return this.#timers.size;
  }
  /** Due time of the earliest timer, or undefined. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }
  /** Moves time forward by `ms`, firing every timer that falls due on the way (including ones armed meanwhile). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let best: [number, { at: number; cb: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.#timers.delete(best[0]);
      this.#now = Math.max(this.#now, best[1].at);
      best[1].cb();
    }
    this.#now = end;
  }
}
