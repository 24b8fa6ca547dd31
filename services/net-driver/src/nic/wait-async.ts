/**
 * Atomics.waitAsync (ES2024; in Node since 16). The repository's TypeScript lib is ES2023, so it is typed here.
 * @module
 */

type WaitAsyncResult =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };

const atomicsWaitAsync = (
  Atomics as unknown as {
    waitAsync(array: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
  }
).waitAsync.bind(Atomics);

/** Waits, without blocking the thread, while `array[index] === value` (until notified or timed out). */
export function waitAsync(array: Int32Array, index: number, value: number, timeoutMs?: number): WaitAsyncResult {
  return atomicsWaitAsync(array, index, value, timeoutMs);
}
