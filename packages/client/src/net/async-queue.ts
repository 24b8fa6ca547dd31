/**
 * A small single-consumer queue with an async iterator, used for accepted connections and received datagrams.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  readonly #waiters: { resolve: (v: IteratorResult<T>) => void }[] = [];
  #closed = false;

  constructor(readonly limit = Number.POSITIVE_INFINITY) {}

  /** Number of queued items. */
  get size(): number {
    return this.#items.length;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Adds an item; returns false (and drops it) when full or closed. */
  push(item: T): boolean {
    if (this.#closed) return false;
    const w = this.#waiters.shift();
    if (w) {
      w.resolve({ value: item, done: false });
      return true;
    }
    if (this.#items.length >= this.limit) return false;
    this.#items.push(item);
    return true;
  }
  /** The next item, or undefined once closed and drained. */
  async next(): Promise<T | undefined> {
    const r = await this.#next();
    return r.done ? undefined : r.value;
  }
  #next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift()!, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push({ resolve }));
  }
  /** Removes and returns the queued items. */
  drain(): T[] {
    return this.#items.splice(0);
  }
  /** Ends iteration for waiting and future consumers (queued items are still delivered). */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.#next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }
}
