/**
 * Demultiplexing analysis (DPF-style): what a packet must satisfy for a program to accept it, as a
 * disjunction of conjunctions of atoms "the `size` bytes at `location`, masked by `mask`, equal `value`".
 * The summary is sound: every packet the program accepts satisfies at least one alternative in full. It
 * may be weaker than the program (conditions it cannot express, such as ranges or inequalities, are
 * left out), so a driver uses it to rule packets out cheaply and runs the full filter on what remains.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import { fold, type Insn, type Program } from './insn.ts';
import { verifyProgram } from './verifier.ts';

/**
 * Where an atom's bytes are: at `offset` from the frame start (`frame`), or at
 * `offset + 4 * (frame[ihlOffset] & 0xf)` (`ipv4-ihl`: what `ldxb 4*([ihlOffset]&0xf)` then
 * `ld [x + offset]` read; TCP's destination port after an Ethernet header is `ihlOffset: 14, offset: 16`).
 */
export type AtomLocation =
  | { readonly base: 'frame'; readonly offset: number }
  | { readonly base: 'ipv4-ihl'; readonly ihlOffset: number; readonly offset: number };

/** One condition: `(load(location, size) & mask) === value`, the load big-endian and in bounds. */
export interface Atom {
  readonly location: AtomLocation;
  readonly size: 1 | 2 | 4;
  readonly mask: number;
  readonly value: number;
}

/** The result of {@link summarize}. */
export interface FilterSummary {
  /**
   * Accepted packets satisfy every atom of at least one alternative. `[]`: the program accepts nothing.
   * `[[]]`: nothing is known (every packet is a candidate).
   */
  readonly alternatives: readonly (readonly Atom[])[];
  /** Atoms common to every alternative: conditions every accepted packet meets (a DPF hash key). */
  readonly required: readonly Atom[];
  /** False when the analysis hit its budget and fell back to `[[]]` (still sound, just uninformative). */
  readonly complete: boolean;
}

type Loc = AtomLocation;
/** Abstract register values. */
type Val =
  | { readonly t: 'unknown' }
  | { readonly t: 'const'; readonly v: number }
  | { readonly t: 'load'; readonly loc: Loc; readonly size: 1 | 2 | 4; readonly mask: number }
  | { readonly t: 'msh'; readonly at: number };

const UNKNOWN: Val = { t: 'unknown' };

interface State {
  readonly a: Val;
  readonly x: Val;
  readonly m: readonly Val[];
}

type Conj = readonly Atom[];

const MAX_ALTERNATIVES = 256;
const MAX_STATES = 20000;

class GiveUp extends Error {}

const locKey = (l: Loc): string => (l.base === 'frame' ? `f${l.offset}` : `i${l.ihlOffset}+${l.offset}`);
const atomKey = (a: Atom): string => `${locKey(a.location)}/${a.size}/${a.mask}/${a.value}`;
const valKey = (v: Val): string => {
  switch (v.t) {
    case 'unknown':
      return 'u';
    case 'const':
      return `c${v.v}`;
    case 'load':
      return `l${locKey(v.loc)}/${v.size}/${v.mask}`;
    case 'msh':
      return `m${v.at}`;
  }
};

/** Two atoms on the same bytes that no packet can satisfy together. */
function contradicts(a: Atom, b: Atom): boolean {
  if (a.size !== b.size || locKey(a.location) !== locKey(b.location)) return false;
  const both = (a.mask & b.mask) >>> 0;
  return (a.value & both) >>> 0 !== (b.value & both) >>> 0;
}

function addAtom(c: Conj, atom: Atom): Conj | undefined {
  const key = atomKey(atom);
  for (const x of c) {
    if (atomKey(x) === key) return c;
    if (contradicts(x, atom)) return undefined;
  }
  return [...c, atom].sort((p, q) => (atomKey(p) < atomKey(q) ? -1 : 1));
}

/** Union of alternatives, dropping duplicates and alternatives implied by weaker ones. */
function union(a: readonly Conj[], b: readonly Conj[]): Conj[] {
  const all = [...a, ...b];
  const keys = all.map((c) => new Set(c.map(atomKey)));
  const keep: Conj[] = [];
  const kept: Set<string>[] = [];
  all.forEach((c, i) => {
    const ki = keys[i]!;
    // c is redundant if some other kept alternative's atoms are a subset of c's.
    if (kept.some((k) => [...k].every((x) => ki.has(x)))) return;
    for (let j = kept.length - 1; j >= 0; j--) {
      if ([...ki].every((x) => kept[j]!.has(x))) {
        kept.splice(j, 1);
        keep.splice(j, 1);
      }
    }
    keep.push(c);
    kept.push(ki);
  });
  if (keep.length > MAX_ALTERNATIVES) throw new GiveUp();
  return keep;
}

function withAtom(alts: readonly Conj[], atom: Atom | undefined): Conj[] {
  if (!atom) return [...alts];
  const out: Conj[] = [];
  for (const c of alts) {
    const n = addAtom(c, atom);
    if (n) out.push(n);
  }
  return union(out, []);
}

function loadAt(x: Val, k: number, size: 1 | 2 | 4): Val {
  if (x.t === 'const') return { t: 'load', loc: { base: 'frame', offset: x.v + k }, size, mask: 0xffffffff };
  if (x.t === 'msh')
    return { t: 'load', loc: { base: 'ipv4-ihl', ihlOffset: x.at, offset: k }, size, mask: 0xffffffff };
  return UNKNOWN;
}

const fullMask = (size: number): number => (size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff);

/** The atom a comparison `A op k` gives on one branch, if it is an equality on masked packet bytes. */
function branchAtom(a: Val, code: number, k: number, taken: boolean): Atom | undefined | null {
  if (a.t !== 'load') return undefined;
  const mask = (a.mask & fullMask(a.size)) >>> 0;
  const mk = (m: number, v: number): Atom | null => {
    // An equality the masked value cannot meet makes the branch impossible (null).
    if ((v & ~m) >>> 0 !== 0) return null;
    return { location: a.loc, size: a.size, mask: m >>> 0, value: v >>> 0 };
  };
  switch (code) {
    case 0x15: // jeq #k
      if (taken) return mk(mask, k);
      // On one bit, "not equal to 0" is "equal to the bit", and the other way round.
      if (mask !== 0 && (mask & (mask - 1)) === 0)
        return k === 0 ? mk(mask, mask) : k === mask ? mk(mask, 0) : undefined;
      return undefined;
    case 0x45: {
      // jset #k
      const bits = (k & mask) >>> 0;
      if (!taken) return bits === 0 ? undefined : mk(bits, 0);
      if (bits === 0) return null;
      return (bits & (bits - 1)) === 0 ? mk(bits, bits) : undefined;
    }
  }
  return undefined;
}

/**
 * Summarises a verified program for demultiplexing (see {@link FilterSummary}). It follows every path
 * with abstract values (constants, masked packet loads at fixed or IPv4-header-relative offsets, the
 * IPv4 header length from `ldxb 4*([k]&0xf)`, through scratch memory), keeps the equalities and bit tests
 * each accepting path passes, and drops paths that return 0 or contradict themselves.
 * @throws {@link BpfError} EXO_ERR_BPF_VERIFY if the program does not verify
 */
export function summarize(p: Program): FilterSummary {
  const v = verifyProgram(p);
  if (!v.ok)
    throw new BpfError(BpfErrorCode.VERIFY, `program rejected: ${v.message}`, { index: v.index, rule: v.rule });
  const memo = new Map<string, Conj[]>();
  const explore = (pc: number, s: State): Conj[] => {
    const key = `${pc}|${valKey(s.a)}|${valKey(s.x)}|${s.m.map(valKey).join(',')}`;
    const hit = memo.get(key);
    if (hit) return hit;
    if (memo.size > MAX_STATES) throw new GiveUp();
    const r = step(pc, s);
    memo.set(key, r);
    return r;
  };
  const step = (pc: number, s: State): Conj[] => {
    let { a, x } = s;
    let m = s.m;
    for (;;) {
      const insn = p[pc] as Insn;
      const { code, k } = insn;
      const cls = code & 7;
      if (cls === 6) {
        const ret = code === 0x06 ? { t: 'const', v: k } : a;
        if (ret.t === 'const' && ret.v === 0) return [];
        return [[]];
      }
      if (cls === 5) {
        if (code === 0x05) {
          pc += 1 + k;
          continue;
        }
        const t = pc + 1 + insn.jt;
        const f = pc + 1 + insn.jf;
        const rhs = code & 0x08 ? x : ({ t: 'const', v: k } as Val);
        if (a.t === 'const' && rhs.t === 'const') {
          const op = code & 0xf0;
          const holds =
            op === 0x10 ? a.v === rhs.v : op === 0x20 ? a.v > rhs.v : op === 0x30 ? a.v >= rhs.v : (a.v & rhs.v) !== 0;
          pc = holds ? t : f;
          continue;
        }
        const here: State = { a, x, m };
        const useK = (code & 0x08) === 0 || rhs.t === 'const';
        const kk = rhs.t === 'const' ? rhs.v : k;
        const jcode = (code & 0xf7) >>> 0; // as if against K
        const at = useK ? branchAtom(a, jcode, kk, true) : undefined;
        const af = useK ? branchAtom(a, jcode, kk, false) : undefined;
        const tr = at === null ? [] : withAtom(explore(t, here), at);
        const fr = af === null ? [] : withAtom(explore(f, here), af);
        return union(tr, fr);
      }
      switch (code) {
        case 0x20:
        case 0x28:
        case 0x30:
          a = {
            t: 'load',
            loc: { base: 'frame', offset: k },
            size: code === 0x20 ? 4 : code === 0x28 ? 2 : 1,
            mask: 0xffffffff,
          };
          break;
        case 0x40:
        case 0x48:
        case 0x50:
          a = loadAt(x, k, code === 0x40 ? 4 : code === 0x48 ? 2 : 1);
          break;
        case 0xb1:
          x = { t: 'msh', at: k };
          break;
        case 0x00:
          a = { t: 'const', v: k };
          break;
        case 0x01:
          x = { t: 'const', v: k };
          break;
        case 0x80:
          a = UNKNOWN;
          break;
        case 0x81:
          x = UNKNOWN;
          break;
        case 0x60:
          a = m[k]!;
          break;
        case 0x61:
          x = m[k]!;
          break;
        case 0x02:
        case 0x03: {
          const copy = [...m];
          copy[k] = code === 0x02 ? a : x;
          m = copy;
          break;
        }
        case 0x07:
          x = a;
          break;
        case 0x87:
          a = x;
          break;
        case 0x84:
          a = a.t === 'const' ? { t: 'const', v: -a.v >>> 0 } : UNKNOWN;
          break;
        default: {
          // ALU with K or X.
          const op = code & 0xf0;
          const rhs = code & 0x08 ? x : ({ t: 'const', v: k } as Val);
          if (a.t === 'const' && rhs.t === 'const') {
            const r = fold(op, a.v, rhs.v);
            // Division by X = 0 returns 0 from the whole program: the path rejects.
            if (r === undefined) return [];
            a = { t: 'const', v: r };
          } else if (op === 0x50 && a.t === 'load' && rhs.t === 'const') {
            a = { ...a, mask: (a.mask & rhs.v) >>> 0 };
          } else if (op === 0x50 && rhs.t === 'load' && a.t === 'const') {
            a = { ...rhs, mask: (rhs.mask & a.v) >>> 0 };
          } else a = UNKNOWN;
        }
      }
      pc++;
    }
  };
  try {
    const alternatives = explore(0, {
      a: { t: 'const', v: 0 },
      x: { t: 'const', v: 0 },
      m: new Array<Val>(16).fill(UNKNOWN),
    });
    return { alternatives, required: common(alternatives), complete: true };
  } catch (e) {
    if (!(e instanceof GiveUp)) throw e;
    return { alternatives: [[]], required: [], complete: false };
  }
}

function common(alts: readonly Conj[]): Atom[] {
  if (alts.length === 0) return [];
  const first = alts[0]!;
  return first.filter((atom) => alts.every((c) => c.some((y) => atomKey(y) === atomKey(atom))));
}

function readBE(pkt: Uint8Array, at: number, size: number, buflen: number): number | undefined {
  if (at + size > buflen) return undefined;
  if (size === 1) return pkt[at]!;
  if (size === 2) return (pkt[at]! << 8) | pkt[at + 1]!;
  return ((pkt[at]! << 24) | (pkt[at + 1]! << 16) | (pkt[at + 2]! << 8) | pkt[at + 3]!) >>> 0;
}

/** Whether a packet meets one atom (out-of-bounds bytes never do: the program would have returned 0). */
export function atomHolds(atom: Atom, pkt: Uint8Array, buflen: number = pkt.length): boolean {
  const len = Math.min(buflen >>> 0, pkt.length);
  let at = atom.location.offset;
  if (atom.location.base === 'ipv4-ihl') {
    const ihl = atom.location.ihlOffset;
    if (ihl >= len) return false;
    at += (pkt[ihl]! & 0x0f) << 2;
  }
  const v = readBE(pkt, at, atom.size, len);
  return v !== undefined && (v & atom.mask) >>> 0 === atom.value;
}

/** Whether a packet may be accepted according to a summary (false means the program surely rejects it). */
export function summaryAdmits(summary: FilterSummary, pkt: Uint8Array, buflen: number = pkt.length): boolean {
  return summary.alternatives.some((c) => c.every((atom) => atomHolds(atom, pkt, buflen)));
}
