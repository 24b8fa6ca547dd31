/**
 * How a sleeping ring side is woken. Both transports wait on the same 32-bit word of the ring header with
 * futex semantics: `wait(word, 1)` sleeps only while the word still holds 1, `notify(word)` wakes sleepers.
 * Between threads that is Atomics.wait/notify on a SharedArrayBuffer; between processes the native addon
 * calls futex(2) on the shared mapping, which Atomics.wait cannot do on a non-shared ArrayBuffer.
 */

/** Outcome of a wait, as Atomics.wait names it. */
export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** A futex-like wait/notify on one i32 of shared memory. */
export interface Doorbell {
  /** Blocks while `words[index] === expected`, at most `timeoutMs` (Infinity: no limit). */
  wait(words: Int32Array, index: number, expected: number, timeoutMs: number): WaitResult;
  /** The same without blocking the event loop. */
  waitAsync(words: Int32Array, index: number, expected: number, timeoutMs: number): Promise<WaitResult>;
  /** Wakes every sleeper on `words[index]`. */
  notify(words: Int32Array, index: number): void;
}

/** Atomics.waitAsync (Node 20 has it; the ES2023 lib the project compiles against does not declare it). */
interface AtomicsWaitAsync {
  waitAsync(
    words: Int32Array,
    index: number,
    expected: number,
    timeoutMs: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}
const { waitAsync } = Atomics as unknown as AtomicsWaitAsync;

/** The doorbell of threads sharing a SharedArrayBuffer. */
export const atomicsDoorbell: Doorbell = {
  wait(words, index, expected, timeoutMs) {
    return Atomics.wait(words, index, expected, timeoutMs);
  },
  async waitAsync(words, index, expected, timeoutMs) {
    const r = waitAsync(words, index, expected, timeoutMs);
    return r.async ? await r.value : r.value;
  },
  notify(words, index) {
    Atomics.notify(words, index);
  },
};
