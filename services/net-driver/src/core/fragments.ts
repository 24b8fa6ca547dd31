import type { FlowKey } from '@exonet/wire';

/**
 * IP fragments after the first carry no transport header, so no port filter can match them: they follow the
 * first fragment. When the first fragment of a datagram is delivered to some tasks, the tracker remembers
 * (family, source, destination, protocol, identification) -> those tasks for a short time, and later
 * fragments of the same datagram go to the same tasks (Linux keeps fragments 30 s: ipfrag_time).
 *
 * Entries live in a small fixed table (no allocation per packet): a new datagram replaces the oldest entry
 * of its slot, which only ever loses fragments, never misdelivers them, because the full key is compared.
 */
export class FragmentTracker {
  readonly #slots: number;
  readonly #ways: number;
  readonly #keys: Uint32Array;
  readonly #meta: Float64Array; // expiresAt per entry
  readonly #tasks: Int32Array;
  readonly #taskCount: Uint8Array;
  readonly #maxTasks: number;
  readonly #lifetimeMs: number;

  /**
   * @param slots hash slots (power of two)
   * @param maxTasksPerDatagram tasks remembered per datagram (more matching tasks: the rest lose later fragments)
   */
  constructor(slots = 1024, maxTasksPerDatagram = 8, lifetimeMs = 30_000) {
    if ((slots & (slots - 1)) !== 0 || slots <= 0)
      throw new RangeError('FragmentTracker: slots must be a power of two');
    this.#slots = slots;
    this.#ways = 4;
    const n = slots * this.#ways;
    this.#keys = new Uint32Array(n * 11);
    this.#meta = new Float64Array(n);
    this.#maxTasks = maxTasksPerDatagram;
    this.#tasks = new Int32Array(n * maxTasksPerDatagram);
    this.#taskCount = new Uint8Array(n);
    this.#lifetimeMs = lifetimeMs;
  }

  /** Starts remembering a first fragment (`key.fragId >= 0`, `fragOffset === 0`); call `add` per task. */
  begin(key: FlowKey, now: number): number {
    const base = this.#slot(key) * this.#ways;
    let victim = base;
    for (let w = 0; w < this.#ways; w++) {
      const e = base + w;
      if (this.#meta[e] <= now || this.#matches(e, key)) {
        victim = e;
        break;
      }
      if (this.#meta[e] < this.#meta[victim]) victim = e;
    }
    const k = victim * 11;
    this.#keys[k] = key.family | (key.protocol << 8);
    this.#keys[k + 1] = key.fragId >>> 0;
    this.#keys[k + 2] = key.vlan & 0xffff;
    for (let i = 0; i < 4; i++) {
      this.#keys[k + 3 + i] = key.src[i];
      this.#keys[k + 7 + i] = key.dst[i];
    }
    this.#meta[victim] = now + this.#lifetimeMs;
    this.#taskCount[victim] = 0;
    return victim;
  }

  /** Adds a task that received the first fragment of the datagram `entry` (from {@link begin}). */
  add(entry: number, task: number): void {
    const c = this.#taskCount[entry];
    for (let i = 0; i < c; i++) if (this.#tasks[entry * this.#maxTasks + i] === task) return;
    if (c < this.#maxTasks) {
      this.#tasks[entry * this.#maxTasks + c] = task;
      this.#taskCount[entry] = c + 1;
    }
  }

  /**
   * For a later fragment, calls `deliver` for every task that received the first one; returns how many.
   * A later fragment that arrives before the first is not delivered (documented limitation).
   */
  follow(key: FlowKey, now: number, deliver: (task: number) => void): number {
    const base = this.#slot(key) * this.#ways;
    for (let w = 0; w < this.#ways; w++) {
      const e = base + w;
      if (this.#meta[e] > now && this.#matches(e, key)) {
        const c = this.#taskCount[e];
        for (let i = 0; i < c; i++) deliver(this.#tasks[e * this.#maxTasks + i]);
        return c;
      }
    }
    return 0;
  }

  /** Forgets a task everywhere (it detached or died). */
  removeTask(task: number): void {
    for (let e = 0; e < this.#taskCount.length; e++) {
      const c = this.#taskCount[e];
      let j = 0;
      for (let i = 0; i < c; i++) {
        const t = this.#tasks[e * this.#maxTasks + i];
        if (t !== task) this.#tasks[e * this.#maxTasks + j++] = t;
      }
      this.#taskCount[e] = j;
    }
  }

  #slot(key: FlowKey): number {
    let h = Math.imul(key.fragId ^ key.protocol, 0x9e3779b1);
    h = Math.imul(h ^ key.src[0] ^ key.src[3], 0x85ebca6b);
    h = Math.imul(h ^ key.dst[0] ^ key.dst[3], 0xc2b2ae35);
    return (h ^ (h >>> 16)) & (this.#slots - 1);
  }

  #matches(e: number, key: FlowKey): boolean {
    const k = e * 11;
    if (
      this.#keys[k] !== (key.family | (key.protocol << 8)) ||
      this.#keys[k + 1] !== key.fragId >>> 0 ||
      this.#keys[k + 2] !== (key.vlan & 0xffff)
    ) {
      return false;
    }
    for (let i = 0; i < 4; i++) {
      if (this.#keys[k + 3 + i] !== key.src[i] || this.#keys[k + 7 + i] !== key.dst[i]) return false;
    }
    return true;
  }
}
