/**
 * A model of the ring's wake-up protocol (docs/ipc-layout.md, "Wake-up protocol"), explored exhaustively:
 * every interleaving of the producer's and the consumer's atomic steps, with both of them free to sleep.
 * Each step below is one sequentially consistent access to shared memory, in the order ring.ts performs
 * them (RingProducer.publish, RingConsumer.release, sleepUntil). A lost wake-up shows as a state where a side
 * sleeps with nobody left to wake it before all messages moved.
 *
 * The consumer may wait on several rings at once through one bell (as a channel side does); the producer
 * fills them in turn and sleeps for space on the ring it is about to fill.
 */
export interface ModelOptions {
  /** Messages to move. */
  readonly messages: number;
  /** Slots per ring. */
  readonly capacity: number;
  /** Rings from the producer to the consumer, all waited on through the consumer's one bell. */
  readonly rings: number;
  /** Broken variants, to show the checker finds lost wake-ups. */
  readonly bug?: 'no-recheck' | 'bell-read-late' | 'flag-before-publish';
}

export interface ModelResult {
  readonly states: number;
  /** A trace to the first state where a side sleeps forever, or undefined if there is none. */
  readonly lostWakeup?: string[];
}

interface State {
  tail: number[];
  head: number[];
  cflag: number[];
  pflag: number[];
  cbell: number;
  pbell: number;
  p: { pc: string; sent: number; seq: number; k: number };
  c: { pc: string; recv: number; seq: number; k: number };
}

const clone = (s: State): State => ({
  tail: [...s.tail],
  head: [...s.head],
  cflag: [...s.cflag],
  pflag: [...s.pflag],
  cbell: s.cbell,
  pbell: s.pbell,
  p: { ...s.p },
  c: { ...s.c },
});

const key = (s: State) => JSON.stringify(s);

/** The producer's next step, or undefined if it cannot move (done, or asleep). */
function producerStep(s: State, o: ModelOptions): State | undefined {
  const n = clone(s);
  const p = n.p;
  const r = p.sent % o.rings;
  const space = () => n.tail[r] - n.head[r] < o.capacity;
  switch (p.pc) {
    case 'top':
      if (p.sent === o.messages) return undefined;
      p.pc = o.bug === 'flag-before-publish' ? 'early-flag' : 'check';
      break;
    case 'early-flag': // broken: reads the consumer's flag before publishing
      p.k = n.cflag[r];
      p.pc = 'check';
      break;
    case 'check': // ready(): load the consumer index
      p.pc = space() ? 'publish' : o.bug === 'bell-read-late' ? 'arm' : 'read-bell';
      break;
    case 'publish': // one atomic store of the producer index
      n.tail[r]++;
      p.sent++;
      p.pc = o.bug === 'flag-before-publish' ? (p.k ? 'clear' : 'top') : 'flag';
      break;
    case 'flag': // load the consumer's need-wakeup flag
      p.pc = n.cflag[r] ? 'clear' : 'top';
      break;
    case 'clear':
      n.cflag[r] = 0;
      p.pc = 'bump';
      break;
    case 'bump':
      n.cbell++;
      p.pc = 'notify';
      break;
    case 'notify':
      if (n.c.pc === 'asleep') n.c.pc = 'disarm';
      p.pc = 'top';
      break;
    case 'read-bell':
      p.seq = n.pbell;
      p.pc = 'arm';
      break;
    case 'arm':
      n.pflag[r] = 1;
      p.pc = o.bug === 'no-recheck' ? 'wait' : 'recheck';
      break;
    case 'recheck':
      p.pc = space() ? 'disarm' : o.bug === 'bell-read-late' ? 'late-bell' : 'wait';
      break;
    case 'late-bell': // broken: snapshot of the bell taken after the re-check
      p.seq = n.pbell;
      p.pc = 'wait';
      break;
    case 'wait': // futex: sleep only while the bell still holds the snapshot
      p.pc = n.pbell === p.seq ? 'asleep' : 'disarm';
      break;
    case 'asleep':
      return undefined;
    case 'disarm':
      n.pflag[r] = 0;
      p.pc = 'top';
      break;
    default:
      throw new Error(`producer pc ${p.pc}`);
  }
  return n;
}

/** The consumer's next step, or undefined if it cannot move. */
function consumerStep(s: State, o: ModelOptions): State | undefined {
  const n = clone(s);
  const c = n.c;
  switch (c.pc) {
    case 'top':
      if (c.recv === o.messages) return undefined;
      c.k = 0;
      c.pc = 'check';
      break;
    case 'check': // ready() on ring k: load its producer index
      if (n.tail[c.k] > n.head[c.k]) c.pc = 'release';
      else if (c.k + 1 < o.rings) c.k++;
      else {
        c.k = 0;
        c.pc = o.bug === 'bell-read-late' ? 'arm' : 'read-bell';
      }
      break;
    case 'release': // take one message, one atomic store of the consumer index
      n.head[c.k]++;
      c.recv++;
      c.pc = 'flag';
      break;
    case 'flag':
      c.pc = n.pflag[c.k] ? 'clear' : 'top';
      break;
    case 'clear':
      n.pflag[c.k] = 0;
      c.pc = 'bump';
      break;
    case 'bump':
      n.pbell++;
      c.pc = 'notify';
      break;
    case 'notify':
      if (n.p.pc === 'asleep') n.p.pc = 'disarm';
      c.pc = 'top';
      break;
    case 'read-bell':
      c.seq = n.cbell;
      c.k = 0;
      c.pc = 'arm';
      break;
    case 'arm': // one flag per ring, one store each
      n.cflag[c.k] = 1;
      if (c.k + 1 < o.rings) c.k++;
      else {
        c.k = 0;
        c.pc = o.bug === 'no-recheck' ? 'wait' : 'recheck';
      }
      break;
    case 'recheck':
      if (n.tail[c.k] > n.head[c.k]) {
        c.k = 0;
        c.pc = 'disarm';
      } else if (c.k + 1 < o.rings) c.k++;
      else {
        c.k = 0;
        c.pc = o.bug === 'bell-read-late' ? 'late-bell' : 'wait';
      }
      break;
    case 'late-bell':
      c.seq = n.cbell;
      c.pc = 'wait';
      break;
    case 'wait':
      c.pc = n.cbell === c.seq ? 'asleep' : 'disarm';
      break;
    case 'asleep':
      return undefined;
    case 'disarm':
      n.cflag[c.k] = 0;
      if (c.k + 1 < o.rings) c.k++;
      else {
        c.k = 0;
        c.pc = 'top';
      }
      break;
    default:
      throw new Error(`consumer pc ${c.pc}`);
  }
  return n;
}

/** Explores every interleaving (depth-first, each state once). */
export function explore(o: ModelOptions): ModelResult {
  const zero = () => new Array(o.rings).fill(0);
  const start: State = {
    tail: zero(),
    head: zero(),
    cflag: zero(),
    pflag: zero(),
    cbell: 0,
    pbell: 0,
    p: { pc: 'top', sent: 0, seq: 0, k: 0 },
    c: { pc: 'top', recv: 0, seq: 0, k: 0 },
  };
  const seen = new Map<string, string | undefined>([[key(start), undefined]]);
  const stack: State[] = [start];
  while (stack.length > 0) {
    const s = stack.pop()!;
    const next = [producerStep(s, o), consumerStep(s, o)].filter((x): x is State => x !== undefined);
    for (const t of next) {
      // Invariants of the ring itself: never more than a capacity in flight, never reading unpublished slots.
      for (let r = 0; r < o.rings; r++) {
        if (t.tail[r] - t.head[r] > o.capacity || t.head[r] > t.tail[r]) throw new Error('ring invariant broken');
      }
    }
    if (next.length === 0 && !(s.p.sent === o.messages && s.c.recv === o.messages)) {
      const trace: string[] = [];
      for (let k: string | undefined = key(s); k !== undefined; k = seen.get(k)) trace.unshift(k);
      return { states: seen.size, lostWakeup: trace };
    }
    const from = key(s);
    for (const t of next) {
      const k = key(t);
      if (!seen.has(k)) {
        seen.set(k, from);
        stack.push(t);
      }
    }
  }
  return { states: seen.size };
}
