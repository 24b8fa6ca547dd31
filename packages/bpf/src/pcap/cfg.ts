/**
 * From predicates to a program: a decision DAG built bottom-up with hash-consing (identical blocks with
 * identical successors are one block), then improved by jump threading (an edge skips a test whose outcome
 * the same statements already decided on every path to it, as libpcap's fold_edge does) and redundant-load
 * elimination, then laid out with forward jumps only. Every step preserves libpcap's semantics exactly,
 * out-of-bounds loads included (see pred.ts).
 * @module
 */
import { BpfError, BpfErrorCode } from '../errors.ts';
import { BPF_MAXINSNS, type Insn, JEQ, JMP, K } from '../insn.ts';
import type { Pred, Test } from './pred.ts';

interface Leaf {
  readonly id: number;
  readonly leaf: true;
  readonly accept: boolean;
}
interface Node {
  readonly id: number;
  readonly leaf: false;
  readonly test: Test;
  t: Vertex;
  f: Vertex;
}
type Vertex = Leaf | Node;

/** Facts known on an edge: exact outcomes of tests, and "A == k" from a taken jeq #k. */
interface Facts {
  readonly outcomes: Map<string, boolean>;
  readonly equal: Map<string, number>;
}

class Dag {
  private next = 2;
  private readonly interned = new Map<string, Node>();
  readonly accept: Leaf = { id: 0, leaf: true, accept: true };
  readonly reject: Leaf = { id: 1, leaf: true, accept: false };

  node(test: Test, t: Vertex, f: Vertex): Vertex {
    // Both ways reject: so does a failing load, so the test changes nothing and goes (as in libpcap).
    if (t === this.reject && f === this.reject) return this.reject;
    const sig = `${test.key}|${test.jcode}|${test.k}|${t.id}|${f.id}`;
    let n = this.interned.get(sig);
    if (!n) {
      n = { id: this.next++, leaf: false, test, t, f };
      this.interned.set(sig, n);
    }
    return n;
  }

  gen(p: Pred, t: Vertex, f: Vertex): Vertex {
    switch (p.kind) {
      case 'const':
        return p.value ? t : f;
      case 'test':
        return this.node(p.test, t, f);
      case 'touch':
        return this.node(p.test, t, t);
      case 'not':
        return this.gen(p.p, f, t);
      case 'and':
        return this.gen(p.a, this.gen(p.b, t, f), f);
      case 'or':
        return this.gen(p.a, t, this.gen(p.b, t, f));
    }
  }

  /** Rebuilds a DAG bottom-up through the interning table, merging blocks that became identical. */
  reintern(root: Vertex): Vertex {
    this.interned.clear();
    const memo = new Map<number, Vertex>();
    const walk = (v: Vertex): Vertex => {
      if (v.leaf) return v;
      const seen = memo.get(v.id);
      if (seen) return seen;
      const r = this.node(v.test, walk(v.t), walk(v.f));
      memo.set(v.id, r);
      return r;
    };
    return walk(root);
  }
}

/**
 * Reverse postorder from the root, visiting the false side first: a topological order in which each
 * block's true side follows it. It is the layout of libpcap's convert_code_r, so when the blocks are the
 * same the program is too, returns included. `withLeaves` also places the returns.
 */
function orderVertices(root: Vertex, withLeaves: boolean): Vertex[] {
  const seen = new Set<number>();
  const post: Vertex[] = [];
  if (root.leaf) return withLeaves ? [root] : [];
  // Iterative DFS: programs can be thousands of blocks deep.
  const stack: { v: Node; stage: number }[] = [{ v: root, stage: 0 }];
  seen.add(root.id);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const child = top.stage === 0 ? top.v.f : top.stage === 1 ? top.v.t : undefined;
    top.stage++;
    if (child === undefined) {
      post.push(top.v);
      stack.pop();
    } else if (!seen.has(child.id)) {
      seen.add(child.id);
      if (!child.leaf) stack.push({ v: child, stage: 0 });
      else if (withLeaves) post.push(child);
    }
  }
  return post.reverse();
}

function order(root: Vertex): Node[] {
  return orderVertices(root, false) as Node[];
}

function decide(facts: Facts, t: Test): boolean | undefined {
  const exact = facts.outcomes.get(`${t.key}|${t.jcode}|${t.k}`);
  if (exact !== undefined) return exact;
  if (t.jcode === (JMP | JEQ | K)) {
    const eq = facts.equal.get(t.key);
    if (eq !== undefined) return eq === t.k;
  }
  return undefined;
}

/**
 * Facts kept per edge at most: enough for every filter people write (the early ones, such as the
 * ethertype, are the ones kept), and a bound on the quadratic cost of very long chains of tests.
 */
const MAX_FACTS = 128;

function extend(facts: Facts, t: Test, outcome: boolean): Facts {
  if (facts.outcomes.size >= MAX_FACTS) return facts;
  const outcomes = new Map(facts.outcomes);
  outcomes.set(`${t.key}|${t.jcode}|${t.k}`, outcome);
  const equal = new Map(facts.equal);
  if (outcome && t.jcode === (JMP | JEQ | K)) equal.set(t.key, t.k);
  return { outcomes, equal };
}

function intersect(a: Facts, b: Facts): Facts {
  const outcomes = new Map<string, boolean>();
  for (const [k, v] of a.outcomes) if (b.outcomes.get(k) === v) outcomes.set(k, v);
  const equal = new Map<string, number>();
  for (const [k, v] of a.equal) if (b.equal.get(k) === v) equal.set(k, v);
  return { outcomes, equal };
}

/** One pass of jump threading in topological order; returns whether any edge moved. */
function thread(root: Vertex): boolean {
  if (root.leaf) return false;
  const incoming = new Map<number, Facts>();
  incoming.set(root.id, { outcomes: new Map(), equal: new Map() });
  let changed = false;
  for (const n of order(root)) {
    const facts = incoming.get(n.id);
    if (!facts) continue; // no longer reachable
    for (const branch of [true, false]) {
      const edge = extend(facts, n.test, branch);
      let target = branch ? n.t : n.f;
      for (;;) {
        if (target.leaf) break;
        const d = decide(edge, target.test);
        if (d === undefined) break;
        target = d ? target.t : target.f;
        changed = true;
      }
      if (branch) n.t = target;
      else n.f = target;
      if (!target.leaf) {
        const prior = incoming.get(target.id);
        incoming.set(target.id, prior ? intersect(prior, edge) : edge);
      }
    }
  }
  return changed;
}

const MAX_BLOCKS = 10000;

/** Compiles a predicate into a program that returns `acceptValue` when it holds and 0 otherwise. */
export function compilePred(p: Pred, acceptValue: number): Insn[] {
  const dag = new Dag();
  let root = dag.gen(p, dag.accept, dag.reject);
  // Threading costs grow with the DAG: bound the work a hostile expression can cause. A DAG this big
  // would not fit in 4096 instructions anyway.
  const size = order(root).length;
  if (size > MAX_BLOCKS) {
    throw new BpfError(BpfErrorCode.TOO_LONG, `the filter is too complex (${size} tests, at most ${MAX_BLOCKS})`);
  }
  for (let round = 0; round < 16; round++) {
    const moved = thread(root);
    root = dag.reintern(root);
    if (!moved) break;
  }
  return layout(root, acceptValue >>> 0);
}

const MSH_CODE = 0xb1;

/** The k of the `ldxb 4*([k]&0xf)` that last set X in a block's statements, if that is what X holds after it. */
function exitX(n: Node): number | undefined {
  let k: number | undefined;
  for (const st of n.test.stmts) {
    const cls = st.code & 7;
    if (st.code === MSH_CODE) k = st.k;
    else if (cls === 1 || st.code === 0x07) k = undefined; // any other LDX, or TAX
  }
  return k;
}

/** Removes `ja 0` (jumps to the next instruction), shortening the jumps that cross each one. */
function dropEmptyJumps(out: Insn[]): void {
  for (let i = out.length - 1; i >= 0; i--) {
    const insn = out[i]!;
    if (insn.code !== 0x05 || insn.k !== 0) continue;
    for (let p = 0; p < i; p++) {
      const j = out[p]!;
      if ((j.code & 7) !== 5) continue;
      if (j.code === 0x05) {
        if (p + 1 + j.k > i) out[p] = { ...j, k: j.k - 1 };
      } else {
        out[p] = { ...j, jt: p + 1 + j.jt > i ? j.jt - 1 : j.jt, jf: p + 1 + j.jf > i ? j.jf - 1 : j.jf };
      }
    }
    out.splice(i, 1);
  }
}

interface Item {
  /** The block's own instructions: stmts (maybe elided) then the jump, or one ret. */
  readonly body: Insn[];
  readonly node?: Node;
  readonly leaf?: Leaf;
  /** Trampolines needed after this block's jump (targets too far for 8 bits). */
  trampT: boolean;
  trampF: boolean;
}

function layout(root: Vertex, acceptValue: number): Insn[] {
  const ret = (accept: boolean): Insn => ({ code: 0x06, jt: 0, jf: 0, k: accept ? acceptValue : 0 });
  if (root.leaf) return [ret(root.accept)];
  const nodes = order(root);
  // Predecessors, for redundant-load elimination.
  const preds = new Map<number, Node[]>();
  for (const n of nodes) {
    for (const s of [n.t, n.f]) {
      if (s.leaf) continue;
      const list = preds.get(s.id) ?? [];
      if (!list.includes(n)) list.push(n);
      preds.set(s.id, list);
    }
  }
  const items: Item[] = orderVertices(root, true).map((v) => {
    if (v.leaf) return { body: [ret(v.accept)], leaf: v, trampT: false, trampF: false };
    const n = v;
    const ps = preds.get(n.id) ?? [];
    // A holds (and X, if the statements set it) exactly these statements' results on every incoming edge.
    const redundant = n !== root && ps.length > 0 && ps.every((p) => p.test.key === n.test.key);
    let body = redundant ? [] : [...n.test.stmts];
    // X already holds the IPv4 header length this block starts by loading, on every incoming edge.
    const first = body[0];
    if (first && first.code === MSH_CODE && n !== root && ps.length > 0 && ps.every((p) => exitX(p) === first.k)) {
      body = body.slice(1);
    }
    body.push({ code: n.test.jcode, jt: 0, jf: 0, k: n.test.k });
    return { body, node: n, trampT: false, trampF: false };
  });

  for (let iter = 0; ; iter++) {
    if (iter > 64) throw new BpfError(BpfErrorCode.TOO_LONG, 'could not lay out the jumps of this filter');
    const start = new Map<number, number>();
    let pc = 0;
    for (const it of items) {
      start.set((it.node ?? it.leaf)!.id, pc);
      pc += it.body.length + (it.trampT ? 1 : 0) + (it.trampF ? 1 : 0);
    }
    let grew = false;
    for (const it of items) {
      if (!it.node || it.node.t === it.node.f) continue; // one way on: a ja, whose k is 32 bits
      const jumpAt = start.get(it.node.id)! + it.body.length - 1;
      const dt = start.get(it.node.t.id)! - (jumpAt + 1);
      const df = start.get(it.node.f.id)! - (jumpAt + 1);
      if (!it.trampT && dt > 255) {
        it.trampT = true;
        grew = true;
      }
      if (!it.trampF && df > 255) {
        it.trampF = true;
        grew = true;
      }
    }
    if (grew) continue;
    const out: Insn[] = [];
    for (const it of items) {
      if (!it.node) {
        out.push(...it.body);
        continue;
      }
      const jumpAt = out.length + it.body.length - 1;
      out.push(...it.body.slice(0, -1));
      const last = it.body[it.body.length - 1]!;
      if (it.node.t === it.node.f) {
        // Both ways lead to the same block (a touch): the statements run, then a plain jump.
        out.push({ code: 0x05, jt: 0, jf: 0, k: start.get(it.node.t.id)! - (jumpAt + 1) });
        continue;
      }
      const tTarget = start.get(it.node.t.id)!;
      const fTarget = start.get(it.node.f.id)!;
      // Trampolines sit right after the jump: first the true one, then the false one.
      const tTramp = jumpAt + 1;
      const fTramp = jumpAt + 1 + (it.trampT ? 1 : 0);
      const jt = it.trampT ? tTramp - (jumpAt + 1) : tTarget - (jumpAt + 1);
      const jf = it.trampF ? fTramp - (jumpAt + 1) : fTarget - (jumpAt + 1);
      out.push({ code: last.code, jt, jf, k: last.k });
      if (it.trampT) out.push({ code: 0x05, jt: 0, jf: 0, k: tTarget - (tTramp + 1) });
      if (it.trampF) out.push({ code: 0x05, jt: 0, jf: 0, k: fTarget - (fTramp + 1) });
    }
    dropEmptyJumps(out);
    if (out.length > BPF_MAXINSNS) {
      throw new BpfError(
        BpfErrorCode.TOO_LONG,
        `the filter needs ${out.length} instructions, more than ${BPF_MAXINSNS}`,
      );
    }
    return out;
  }
}
