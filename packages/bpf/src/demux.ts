/**
 * A DPF-style demultiplexing index over filter summaries: one hash lookup per distinct packet field the
 * installed filters test, whatever their number, gives the few filters worth running on a packet.
 * @module
 */
import { type Atom, type AtomLocation, atomHolds, type FilterSummary } from './analysis.ts';

/** A field as the index keys it: where, how wide, which bits. */
interface Field {
  readonly location: AtomLocation;
  readonly size: 1 | 2 | 4;
  readonly mask: number;
  /** value -> entries whose key atom is on this field with that value. */
  readonly byValue: Map<number, Set<Entry>>;
}

interface Entry {
  readonly id: string;
  /** The alternative's atoms other than its key, checked before a filter becomes a candidate. */
  readonly rest: readonly Atom[];
}

const fieldKey = (a: { location: AtomLocation; size: number; mask: number }): string =>
  a.location.base === 'frame'
    ? `f${a.location.offset}/${a.size}/${a.mask}`
    : `i${a.location.ihlOffset}+${a.location.offset}/${a.size}/${a.mask}`;

/**
 * How much an atom narrows things down, for picking each alternative's key: the number of bits it fixes,
 * with a bonus past the Ethernet header (the ethertype is shared by most filters, ports and addresses are not).
 */
function selectivity(a: Atom): number {
  let bits = 0;
  for (let m = a.mask >>> 0; m !== 0; m &= m - 1) bits++;
  const deep = a.location.base === 'ipv4-ihl' || a.location.offset >= 14 ? 64 : 0;
  return bits + deep;
}

function readField(f: Field, pkt: Uint8Array, len: number): number | undefined {
  let at = f.location.offset;
  if (f.location.base === 'ipv4-ihl') {
    if (f.location.ihlOffset >= len) return undefined;
    at += (pkt[f.location.ihlOffset]! & 0x0f) << 2;
  }
  if (at + f.size > len) return undefined;
  const v =
    f.size === 1
      ? pkt[at]!
      : f.size === 2
        ? (pkt[at]! << 8) | pkt[at + 1]!
        : ((pkt[at]! << 24) | (pkt[at + 1]! << 16) | (pkt[at + 2]! << 8) | pkt[at + 3]!) >>> 0;
  return (v & f.mask) >>> 0;
}

/**
 * Index of filters by their summaries ({@link summarize}). `candidates(pkt)` returns every filter that may
 * accept the packet (never misses one: summaries are sound) and, typically, few others; run the full
 * compiled filter on those only.
 */
export class DemuxIndex {
  private readonly fields = new Map<string, Field>();
  /** Filters with an alternative the summary says nothing about: candidates for every packet. */
  private readonly always = new Set<string>();
  private readonly entries = new Map<string, { field?: Field; value?: number; entry?: Entry }[]>();

  /** Adds (or replaces) a filter under an id. */
  add(id: string, summary: FilterSummary): void {
    this.remove(id);
    const placed: { field?: Field; value?: number; entry?: Entry }[] = [];
    for (const alt of summary.alternatives) {
      if (alt.length === 0) {
        this.always.add(id);
        placed.push({});
        continue;
      }
      const key = alt.reduce((best, a) => (selectivity(a) > selectivity(best) ? a : best));
      const fk = fieldKey(key);
      let field = this.fields.get(fk);
      if (!field) {
        field = { location: key.location, size: key.size, mask: key.mask, byValue: new Map() };
        this.fields.set(fk, field);
      }
      const entry: Entry = { id, rest: alt.filter((a) => a !== key) };
      let set = field.byValue.get(key.value);
      if (!set) {
        set = new Set();
        field.byValue.set(key.value, set);
      }
      set.add(entry);
      placed.push({ field, value: key.value, entry });
    }
    this.entries.set(id, placed);
  }

  /** Removes a filter. */
  remove(id: string): void {
    const placed = this.entries.get(id);
    if (!placed) return;
    this.always.delete(id);
    for (const p of placed) {
      if (!p.field || p.value === undefined || !p.entry) continue;
      const set = p.field.byValue.get(p.value);
      set?.delete(p.entry);
      if (set && set.size === 0) p.field.byValue.delete(p.value);
      if (p.field.byValue.size === 0) this.fields.delete(fieldKey(p.field));
    }
    this.entries.delete(id);
  }

  /** Number of distinct fields looked up per packet. */
  get fieldCount(): number {
    return this.fields.size;
  }

  /** Ids of the filters that may accept the packet (a superset of those that do). */
  candidates(pkt: Uint8Array, buflen: number = pkt.length): Set<string> {
    const len = Math.min(buflen >>> 0, pkt.length);
    const out = new Set(this.always);
    for (const f of this.fields.values()) {
      const v = readField(f, pkt, len);
      if (v === undefined) continue;
      const set = f.byValue.get(v);
      if (!set) continue;
      for (const e of set) if (!out.has(e.id) && e.rest.every((a) => atomHolds(a, pkt, len))) out.add(e.id);
    }
    return out;
  }
}
