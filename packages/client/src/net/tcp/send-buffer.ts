/**
 * The bytes a connection has accepted from the application and not yet seen acknowledged: a list of chunks
 * from which segments are cut at any offset, trimmed from the front as ACKs arrive.
 */
export class SendBuffer {
  readonly #chunks: Uint8Array[] = [];
  #head = 0; // offset into #chunks[0]
  #length = 0;

  /** Bytes held (unsent plus unacknowledged). */
  get length(): number {
    return this.#length;
  }

  /** Appends a copy of `data`. */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#chunks.push(data.slice());
    this.#length += data.length;
  }

  /** Drops `n` bytes from the front (acknowledged). */
  consume(n: number): void {
    n = Math.min(n, this.#length);
    this.#length -= n;
    while (n > 0) {
      const c = this.#chunks[0]!;
      const left = c.length - this.#head;
      if (n < left) {
        this.#head += n;
        return;
      }
      n -= left;
      this.#chunks.shift();
      this.#head = 0;
    }
  }

  /** Copies up to `len` bytes starting `offset` bytes from the front. */
  read(offset: number, len: number): Uint8Array {
    len = Math.max(0, Math.min(len, this.#length - offset));
    const out = new Uint8Array(len);
    let pos = 0;
    let skip = offset + this.#head;
    for (const c of this.#chunks) {
      if (pos === len) break;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const take = Math.min(c.length - skip, len - pos);
      out.set(c.subarray(skip, skip + take), pos);
      pos += take;
      skip = 0;
    }
    return out;
  }
}
