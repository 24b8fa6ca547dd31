/**
 * A model of the channel group's wake-up protocol (docs/ipc-layout.md, "Channel group"), explored
 * exhaustively: every interleaving of the driver's and the poller's atomic steps. Each step is one sequentially
 * consistent access, in the order channel-group.ts and driver-channel.ts perform them: the driver publishes a
 * channel's producer index, sets the channel's pending bit, then reads the poller's need-wakeup flag and, if
 * set, clears it, adds 1 to the bell and wakes it; the poller takes the pending bits with one exchange, drains
 * each marked channel, and when nothing was pending takes a bell snapshot, arms its flag, re-checks the
 * bits and sleeps while the bell holds the snapshot. A lost wake-up is a state where the poller sleeps with
 * nobody left to wake it while a channel still holds unread messages.
 */
export interface GroupModelOptions {
  /** Member channels (at most 30: one bitmap word). */
  readonly channels: number;
  /** Messages the driver publishes, round-robin over the channels. */
  readonly messages: number;
  /** Broken variants, to show the checker finds lost wake-ups. */
  readonly bug?: 'no-recheck' | 'clear-after-drain' | 'flag-before-publish';
}

export interface GroupModelResult {
  readonly states: number;
  /** A trace to the first state where the poller sleeps forever with work left, or undefined if none. */
  readonly lostWakeup?: string[];
}

interface State {
  tail: number[];
  head: number[];
  pending: number;
  waiting: number;
  bell: number;
  /** Driver: pc, messages sent. */
  d: { pc: string; sent: number };
  /** Poller: pc, bits taken, channel being drained, bell snapshot. */
  t: { pc: string; bits: number; c: number; seq: number };
}

const clone = (s: State): State => ({
  tail: [...s.tail],
  head: [...s.head],
  pending: s.pending,
  waiting: s.waiting,
  bell: s.bell,
  d: { ...s.d },
  t: { ...s.t },
});

function driverStep(s: State, o: GroupModelOptions): State | undefined {
  const n = clone(s);
  const d = n.d;
  const c = d.sent % o.channels;
  const early = o.bug === 'flag-before-publish';
  switch (d.pc) {
    case 'top':
      if (d.sent === o.messages) return undefined;
      d.pc = early ? 'mark' : 'publish';
      return n;
    case 'publish':
      n.tail[c]++;
      d.pc = early ? 'next' : 'mark';
      return n;
    case 'mark':
      n.pending |= 1 << c;
      d.pc = 'load-flag';
      return n;
    case 'load-flag':
      d.pc = n.waiting !== 0 ? 'clear-flag' : early ? 'publish' : 'next';
      return n;
    case 'clear-flag':
      n.waiting = 0;
      d.pc = 'bell';
      return n;
    case 'bell':
      n.bell++;
      // The wake: a sleeper whose snapshot no longer matches the bell is woken.
      if (n.t.pc === 'asleep') n.t.pc = 'disarm';
      d.pc = early ? 'publish' : 'next';
      return n;
    case 'next':
      d.sent++;
      d.pc = 'top';
      return n;
  }
  throw new Error(`driver pc ${d.pc}`);
}

function pollerStep(s: State, o: GroupModelOptions): State | undefined {
  const n = clone(s);
  const t = n.t;
  const lateClear = o.bug === 'clear-after-drain';
  switch (t.pc) {
    case 'top':
      if (lateClear) {
        t.bits = n.pending; // a plain read; cleared only after draining
      } else {
        t.bits = n.pending;
        n.pending = 0;
      }
      t.c = 0;
      t.pc = t.bits !== 0 ? 'drain' : 'snapshot';
      return n;
    case 'drain': {
      while (t.c < o.channels && (t.bits & (1 << t.c)) === 0) t.c++;
      if (t.c === o.channels) {
        if (lateClear) n.pending &= ~t.bits;
        t.pc = 'top';
        return n;
      }
      // Drains the channel: reads its producer index and consumes everything up to it.
      n.head[t.c] = n.tail[t.c];
      t.c++;
      return n;
    }
    case 'snapshot':
      t.seq = n.bell;
      t.pc = 'arm';
      return n;
    case 'arm':
      n.waiting = 1;
      t.pc = o.bug === 'no-recheck' ? 'wait' : 'recheck';
      return n;
    case 'recheck':
      t.pc = n.pending !== 0 ? 'disarm' : 'wait';
      return n;
    case 'wait':
      // futex: sleeps only while the bell still holds the snapshot (compare and sleep atomically).
      t.pc = n.bell === t.seq ? 'asleep' : 'disarm';
      return n;
    case 'asleep':
      return undefined;
    case 'disarm':
      n.waiting = 0;
      t.pc = 'top';
      return n;
  }
  throw new Error(`poller pc ${t.pc}`);
}

/** Explores every interleaving; reports the number of distinct states and the first lost wake-up found. */
export function exploreGroup(o: GroupModelOptions): GroupModelResult {
  const start: State = {
    tail: new Array(o.channels).fill(0),
    head: new Array(o.channels).fill(0),
    pending: 0,
    waiting: 0,
    bell: 0,
    d: { pc: 'top', sent: 0 },
    t: { pc: 'top', bits: 0, c: 0, seq: 0 },
  };
  const key = (s: State) => JSON.stringify(s);
  const seen = new Map<string, string[] | null>([[key(start), null]]);
  const parent = new Map<string, { from: string; step: string }>();
  const queue: State[] = [start];
  while (queue.length > 0) {
    const s = queue.shift()!;
    const k = key(s);
    const dn = driverStep(s, o);
    const tn = pollerStep(s, o);
    const left = s.tail.some((x, i) => x !== s.head[i]);
    if (dn === undefined && s.t.pc === 'asleep' && left) {
      const trace: string[] = [];
      for (let at = k; parent.has(at); at = parent.get(at)!.from) trace.unshift(parent.get(at)!.step);
      return { states: seen.size, lostWakeup: trace };
    }
    for (const [next, step] of [
      [dn, `driver ${s.d.pc}`],
      [tn, `poller ${s.t.pc}`],
    ] as const) {
      if (next === undefined) continue;
      const nk = key(next);
      if (seen.has(nk)) continue;
      seen.set(nk, null);
      parent.set(nk, { from: k, step });
      queue.push(next);
    }
  }
  return { states: seen.size };
}
