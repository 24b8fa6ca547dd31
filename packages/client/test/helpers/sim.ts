import {
  createLinkPair,
  createStack,
  FaultInjectingLink,
  type FaultLinkOptions,
  type FrameLink,
  ManualClock,
  type NetStack,
} from '../../src/net/index.ts';
import type { StackOptions } from '../../src/net/stack.ts';

/** Waits for all pending microtasks and I/O callbacks of this turn. */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/**
 * A discrete-event simulation: two stacks on an in-memory link sharing a manual clock. `until` lets frames
 * flow (microtasks) and, whenever nothing moves, jumps the clock to the next timer.
 */
export interface Sim {
  clock: ManualClock;
  a: NetStack;
  b: NetStack;
  faultA: FaultInjectingLink | null;
  until(cond: () => boolean, maxMs?: number): Promise<void>;
  close(): void;
}

let seedCounter = 1;

export function createSim(
  opts: {
    faults?: FaultLinkOptions;
    a?: Partial<StackOptions>;
    b?: Partial<StackOptions>;
    /** Wraps A's link (after the fault injector). */
    wrapA?: (link: FrameLink) => FrameLink;
  } = {},
): Sim {
  const clock = new ManualClock(1000);
  const pair = createLinkPair();
  const faultA = opts.faults ? new FaultInjectingLink(pair.a, { clock, ...opts.faults }) : null;
  let seed = seedCounter++ * 7919;
  const random32 = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  const linkA = faultA ?? pair.a;
  const a = createStack({
    link: opts.wrapA ? opts.wrapA(linkA) : linkA,
    ipv4: '10.0.0.1/24',
    clock,
    random32,
    ...opts.a,
  });
  const b = createStack({ link: pair.b, ipv4: '10.0.0.2/24', clock, random32, ...opts.b });
  return {
    clock,
    a,
    b,
    faultA,
    async until(cond, maxMs = 600_000) {
      const deadline = clock.now() + maxMs;
      for (let i = 0; i < 2_000_000; i++) {
        await turn();
        if (cond()) return;
        const due = clock.nextDue();
        if (due === undefined || due > deadline) throw new Error('simulation stalled before the condition held');
        clock.advance(Math.max(0, due - clock.now()));
      }
      throw new Error('simulation did not converge');
    },
    close() {
      a.close();
      b.close();
    },
  };
}

/** Deterministic pseudo-random bytes. */
export function patternBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}
