import { type Atom, type FilterSummary, type Program, summarize } from '@exonet/bpf';
import type { CandidateVisitor, Demux } from './demux.ts';
import type { FrameFilter, InstalledGrant } from './grant-table.ts';

/**
 * The merged receive index, after DPF (Engler and Kaashoek, 1996): every filter is summarised by
 * @exonet/bpf's `summarize` as alternatives of atoms ("these bytes, masked, equal this value"). Alternatives
 * that test the same bytes with the same masks share a *shape*; each shape keeps a hash table from the tested
 * values to the grants that want them. Per frame the index reads each shape's bytes once, hashes them and
 * looks one bucket up: the cost depends on the number of shapes (a handful: "IPv4 UDP destination port",
 * "IPv6 UDP destination port", "EtherType"...), not on the number of filters. Filters the analysis cannot
 * say anything about are candidates for every frame.
 *
 * Sound by construction: the summary is necessary for acceptance, so a grant that is not a candidate would
 * have rejected the frame; candidates still run their full filter, so a hash collision only costs time.
 */
export class IndexedDemux implements Demux {
  readonly #shapes: Shape[] = [];
  readonly #byShapeKey = new Map<string, Shape>();
  /**
   * The first level of the trie: most shapes test the EtherType, so the frame's EtherType picks the few
   * shapes worth looking at (an ARP frame never consults the IPv4 or IPv6 port tables).
   */
  readonly #byEtherType = new Map<number, Shape[]>();
  /** Per shape and EtherType, how many entries it holds: the shape leaves the first level at zero. */
  readonly #etherCount = new Map<Shape, Map<number, number>>();
  /** Shapes that do not test the EtherType: consulted for every frame. */
  #anyEtherType: Shape[] = [];
  /** Grants summarised as "anything may match" (or whose analysis gave up). */
  #always: InstalledGrant[] = [];
  /** Where each grant sits, for removal. */
  readonly #entries = new Map<InstalledGrant, { shape: Shape | null; hash: number; etherType?: number }[]>();

  get size(): number {
    return this.#entries.size;
  }

  /** Shapes in use (for status and the benchmark). */
  get shapeCount(): number {
    return this.#shapes.length;
  }

  add(grant: InstalledGrant): void {
    if (this.#entries.has(grant)) return;
    const summary = safeSummary(grant.program);
    const places: { shape: Shape | null; hash: number; etherType?: number }[] = [];
    // A program that accepts nothing has no alternatives: it is never a candidate.
    for (const alt of summary.alternatives) {
      if (alt.length === 0) {
        if (!places.some((p) => p.shape === null)) {
          this.#always = [...this.#always, grant];
          places.push({ shape: null, hash: 0 });
        }
        continue;
      }
      const shape = this.#shapeFor(alt);
      const hash = shape.hashOfAtoms(alt);
      if (places.some((p) => p.shape === shape && p.hash === hash)) continue;
      shape.insert(hash, grant);
      this.#countEther(shape, etherTypeOf(alt), 1);
      places.push({ shape, hash, etherType: etherTypeOf(alt) });
    }
    this.#entries.set(grant, places);
  }

  remove(grant: InstalledGrant): void {
    const places = this.#entries.get(grant);
    if (places === undefined) return;
    this.#entries.delete(grant);
    for (const p of places) {
      if (p.shape === null) this.#always = this.#always.filter((g) => g !== grant);
      else {
        p.shape.delete(p.hash, grant);
        this.#countEther(p.shape, p.etherType ?? -1, -1);
      }
    }
    for (let i = this.#shapes.length - 1; i >= 0; i--) {
      const s = this.#shapes[i];
      if (s.count === 0) {
        this.#shapes.splice(i, 1);
        this.#byShapeKey.delete(s.key);
        this.#anyEtherType = this.#anyEtherType.filter((x) => x !== s);
      }
    }
  }

  candidates(frame: Uint8Array, length: number, visit: CandidateVisitor): void {
    const always = this.#always;
    for (let i = 0; i < always.length; i++) visit(always[i], always[i].task, always[i].filter);
    if (length >= 14) {
      const byType = this.#byEtherType.get((frame[12] << 8) | frame[13]);
      if (byType !== undefined) this.#visitShapes(byType, frame, length, visit);
    }
    this.#visitShapes(this.#anyEtherType, frame, length, visit);
  }

  #visitShapes(shapes: readonly Shape[], frame: Uint8Array, length: number, visit: CandidateVisitor): void {
    for (let i = 0; i < shapes.length; i++) {
      const shape = shapes[i];
      const slot = shape.lookup(frame, length);
      if (slot < 0) continue;
      // Most buckets hold one grant, kept without an array around it, its task and filter beside it in the
      // table: the grant object itself is not reached.
      const task = shape.tasks[slot];
      const bucket = shape.values[slot]!;
      if (task >= 0) visit(bucket as InstalledGrant, task, shape.filters[slot]!);
      else {
        const list = bucket as InstalledGrant[];
        for (let j = 0; j < list.length; j++) visit(list[j], list[j].task, list[j].filter);
      }
    }
  }

  /** Keeps the first level in step: `etherType` -1 means the alternative does not test it. */
  #countEther(shape: Shape, etherType: number, delta: 1 | -1): void {
    if (etherType < 0) {
      if (delta > 0 && !this.#anyEtherType.includes(shape)) this.#anyEtherType = [...this.#anyEtherType, shape];
      return;
    }
    const counts = this.#etherCount.get(shape) ?? new Map<number, number>();
    this.#etherCount.set(shape, counts);
    const n = (counts.get(etherType) ?? 0) + delta;
    const list = this.#byEtherType.get(etherType) ?? [];
    if (n <= 0) {
      counts.delete(etherType);
      if (counts.size === 0) this.#etherCount.delete(shape);
      const kept = list.filter((x) => x !== shape);
      if (kept.length === 0) this.#byEtherType.delete(etherType);
      else this.#byEtherType.set(etherType, kept);
    } else {
      counts.set(etherType, n);
      if (!list.includes(shape)) this.#byEtherType.set(etherType, [...list, shape]);
    }
  }

  #shapeFor(alt: readonly Atom[]): Shape {
    const key = shapeKey(alt);
    let shape = this.#byShapeKey.get(key);
    if (shape === undefined) {
      shape = new Shape(key, sortAtoms(alt));
      this.#byShapeKey.set(key, shape);
      this.#shapes.push(shape);
    }
    return shape;
  }
}

/**
 * Whether two programs may accept a common frame, judged from their summaries: false only when every pair
 * of alternatives tests some bytes (same place, size) for values that differ under both masks. Used to keep
 * exclusive grants apart; "true" when unsure.
 */
export function mayOverlap(a: Program, b: Program): boolean {
  const sa = safeSummary(a);
  const sb = safeSummary(b);
  for (const x of sa.alternatives) {
    for (const y of sb.alternatives) {
      if (!x.some((p) => y.some((q) => contradict(p, q)))) return true;
    }
  }
  return false;
}

/** One set of tested places; a hash table from their values to grants. */
class Shape {
  /** Per atom, flattened: base (0 frame, 1 ipv4-ihl), ihlOffset, offset, size, mask. */
  readonly #code: Int32Array;
  readonly #n: number;
  /**
   * Grants by hash of their values (one grant alone, or an array of them): open addressing with linear
   * probing over two flat arrays, the keys in an Int32Array (EMPTY marks a free slot). A per-frame lookup is
   * then a multiply, a shift and one or two typed-array reads, where a Map costs its own hashing and a chain.
   */
  #keys = new Int32Array(8).fill(EMPTY);
  /** Per slot: the bucket; for a bucket of one grant, its task and filter (task -1 for a larger bucket). */
  values: (InstalledGrant | InstalledGrant[] | undefined)[] = new Array(8).fill(undefined);
  tasks = new Int32Array(8).fill(-1);
  filters: (FrameFilter | undefined)[] = new Array(8).fill(undefined);
  #mask = 7;
  #shift = 29;
  /** Distinct hashes held. */
  #used = 0;
  count = 0;

  constructor(
    readonly key: string,
    atoms: readonly Atom[],
  ) {
    this.#n = atoms.length;
    this.#code = new Int32Array(atoms.length * 5);
    atoms.forEach((a, i) => {
      const c = i * 5;
      this.#code[c] = a.location.base === 'frame' ? 0 : 1;
      this.#code[c + 1] = a.location.base === 'frame' ? 0 : a.location.ihlOffset;
      this.#code[c + 2] = a.location.offset;
      this.#code[c + 3] = a.size;
      this.#code[c + 4] = a.mask | 0;
    });
  }

  /** The hash of an alternative's values, in this shape's atom order. */
  hashOfAtoms(alt: readonly Atom[]): number {
    let h = HASH_SEED;
    for (const a of sortAtoms(alt)) h = mix(h, a.value);
    return h & SMI_MASK;
  }

  insert(hash: number, grant: InstalledGrant): void {
    const at = this.#find(hash);
    if (at >= 0) {
      const bucket = this.values[at]!;
      this.#set(at, Array.isArray(bucket) ? [...bucket, grant] : [bucket, grant]);
    } else {
      // At most half full, so that a miss (most frames of a busy link find nobody) ends within a probe or two.
      if ((this.#used + 1) * 2 > this.#keys.length) this.#resize(this.#keys.length * 2);
      this.#place(hash, grant);
      this.#used++;
    }
    this.count++;
  }

  delete(hash: number, grant: InstalledGrant): void {
    const at = this.#find(hash);
    if (at < 0) return;
    const bucket = this.values[at]!;
    const list = Array.isArray(bucket) ? bucket : [bucket];
    const kept = list.filter((g) => g !== grant);
    if (kept.length === list.length) return;
    this.count -= list.length - kept.length;
    if (kept.length > 0) {
      this.#set(at, kept.length === 1 ? kept[0] : kept);
      return;
    }
    this.#used--;
    // Backward-shift deletion: every later entry of the probe run that could live in the freed slot moves
    // up, so lookups never need tombstones.
    const keys = this.#keys;
    const mask = this.#mask;
    let hole = at;
    for (let i = (at + 1) & mask; keys[i] !== EMPTY; i = (i + 1) & mask) {
      const home = this.#home(keys[i]);
      // The entry may move into the hole when its home is not strictly after the hole (cyclically) up to i.
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        keys[hole] = keys[i];
        this.#set(hole, this.values[i]);
        hole = i;
      }
    }
    keys[hole] = EMPTY;
    this.#set(hole, undefined);
    if (this.#keys.length > 8 && this.#used * 8 < this.#keys.length) this.#resize(this.#keys.length >> 1);
  }

  /** Where a hash's probe run starts: Fibonacci hashing, the top bits of a multiply. */
  #home(hash: number): number {
    return Math.imul(hash, 0x9e3779b1) >>> this.#shift;
  }

  /** The slot holding `hash`, or -1. */
  #find(hash: number): number {
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = this.#home(hash); ; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === hash) return i;
      if (k === EMPTY) return -1;
    }
  }

  #place(hash: number, value: InstalledGrant | InstalledGrant[]): void {
    const keys = this.#keys;
    const mask = this.#mask;
    let i = this.#home(hash);
    while (keys[i] !== EMPTY) i = (i + 1) & mask;
    keys[i] = hash;
    this.#set(i, value);
  }

  /** Stores a slot's bucket, and beside it the task and filter of a bucket of one. */
  #set(slot: number, value: InstalledGrant | InstalledGrant[] | undefined): void {
    this.values[slot] = value;
    const one = value !== undefined && !Array.isArray(value);
    this.tasks[slot] = one ? value.task : -1;
    this.filters[slot] = one ? value.filter : undefined;
  }

  #resize(size: number): void {
    const oldKeys = this.#keys;
    const oldValues = this.values;
    this.#keys = new Int32Array(size).fill(EMPTY);
    this.values = new Array(size).fill(undefined);
    this.tasks = new Int32Array(size).fill(-1);
    this.filters = new Array(size).fill(undefined);
    this.#mask = size - 1;
    this.#shift = 32 - Math.log2(size);
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i] !== EMPTY) this.#place(oldKeys[i], oldValues[i]!);
  }

  /** Reads this shape's bytes from the frame and finds their bucket's slot (-1: none, or a byte out of bounds). */
  lookup(frame: Uint8Array, length: number): number {
    const code = this.#code;
    let h = HASH_SEED;
    for (let i = 0; i < this.#n; i++) {
      const c = i * 5;
      let at = code[c + 2];
      if (code[c] === 1) {
        const ihl = code[c + 1];
        if (ihl >= length) return -1;
        at += (frame[ihl] & 0x0f) << 2;
      }
      const size = code[c + 3];
      if (at < 0 || at + size > length) return -1;
      let v: number;
      if (size === 1) v = frame[at];
      else if (size === 2) v = (frame[at] << 8) | frame[at + 1];
      else v = ((frame[at] << 24) | (frame[at + 1] << 16) | (frame[at + 2] << 8) | frame[at + 3]) >>> 0;
      h = mix(h, (v & code[c + 4]) >>> 0);
    }
    h &= SMI_MASK;
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = Math.imul(h, 0x9e3779b1) >>> this.#shift; ; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === h) return i;
      if (k === EMPTY) return -1;
    }
  }
}

const HASH_SEED = 0x811c9dc5;
/** A free slot of a shape's table: hashes are cut to 30 bits (SMI_MASK), so no hash is negative. */
const EMPTY = -1;
/**
 * Table keys are cut to 30 bits: a small integer to V8, where a full 32-bit hash is a heap number half the time
 * (boxed for every lookup, and compared as a double in the table).
 */
const SMI_MASK = 0x3fffffff;

/** The EtherType an alternative requires (a full 16-bit test at frame offset 12), or -1. */
function etherTypeOf(alt: readonly Atom[]): number {
  for (const a of alt) {
    if (a.location.base === 'frame' && a.location.offset === 12 && a.size === 2 && (a.mask & 0xffff) === 0xffff) {
      return a.value;
    }
  }
  return -1;
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}

function atomPlace(a: Atom): string {
  const l = a.location;
  return `${l.base === 'frame' ? 'f' : `i${l.ihlOffset}+`}${l.offset}/${a.size}/${a.mask >>> 0}`;
}

function sortAtoms(alt: readonly Atom[]): Atom[] {
  return [...alt].sort((p, q) => (atomPlace(p) < atomPlace(q) ? -1 : atomPlace(p) > atomPlace(q) ? 1 : 0));
}

function shapeKey(alt: readonly Atom[]): string {
  return sortAtoms(alt).map(atomPlace).join(',');
}

function contradict(p: Atom, q: Atom): boolean {
  if (p.size !== q.size || p.location.base !== q.location.base || p.location.offset !== q.location.offset) return false;
  if (
    p.location.base === 'ipv4-ihl' &&
    q.location.base === 'ipv4-ihl' &&
    p.location.ihlOffset !== q.location.ihlOffset
  ) {
    return false;
  }
  const both = (p.mask & q.mask) >>> 0;
  return (p.value & both) >>> 0 !== (q.value & both) >>> 0;
}

/** The summary, or "nothing known" when the analysis refuses (it never makes a program unreceivable). */
function safeSummary(program: Program): FilterSummary {
  try {
    return summarize(program);
  } catch {
    return { alternatives: [[]], required: [], complete: false };
  }
}
