/**
 * Subarray views reused across calls, so that bulk copies with one `TypedArray.set` per contiguous run allocate
 * nothing in steady state. `set` copies the whole of its source, so copying words `[start, start + length)` of
 * an array needs a view of exactly that range; creating one per batch would allocate on the message path.
 * A caller moving batches of a steady size at a steady stride asks for the same few ranges again and again;
 * this small fully associative cache (round-robin replacement) hands back the view made the first time.
 * Ranges of one large `home` array (a ring's slots, a pool) that start on a multiple of `align` are
 * remembered one per start instead, however many there are: a stream walking round a ring of many batches
 * starts a range at each of them. A miss (a new range) simply creates the view, so correctness never depends
 * on the cache.
 */
export class ViewCache<T extends Uint8Array | Uint32Array> {
  private readonly arrays: (T | undefined)[];
  private readonly starts: Int32Array;
  private readonly lengths: Int32Array;
  private readonly views: (T | undefined)[];
  private next = 0;
  /** For `home`: the last view made for each aligned start used (a Map: only those starts take memory). */
  private readonly homeViews = new Map<number, T>();

  /**
   * `entries` ranges of any arrays are remembered; and one per aligned start of `home`, if given (at most
   * `home.length / align` views, and only for the starts actually used).
   */
  constructor(
    private readonly entries = 16,
    private readonly home?: T,
    private readonly align = 1,
  ) {
    this.arrays = new Array(entries).fill(undefined);
    this.views = new Array(entries).fill(undefined);
    this.starts = new Int32Array(entries);
    this.lengths = new Int32Array(entries);
  }

  /** A view of `array[start, start + length)`; the caller has checked that the range lies within `array`. */
  get(array: T, start: number, length: number): T {
    if (start === 0 && length === array.length) return array;
    if (array === this.home && start % this.align === 0) {
      const cached = this.homeViews.get(start);
      if (cached !== undefined && cached.length === length) return cached;
      const view = array.subarray(start, start + length) as T;
      this.homeViews.set(start, view);
      return view;
    }
    const arrays = this.arrays;
    for (let i = 0; i < this.entries; i++) {
      if (arrays[i] === array && this.starts[i] === start && this.lengths[i] === length) return this.views[i] as T;
    }
    const view = array.subarray(start, start + length) as T;
    const at = this.next;
    this.next = at + 1 === this.entries ? 0 : at + 1;
    arrays[at] = array;
    this.starts[at] = start;
    this.lengths[at] = length;
    this.views[at] = view;
    return view;
  }
}
