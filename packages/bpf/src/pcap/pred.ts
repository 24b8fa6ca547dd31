/**
 * The intermediate form between the parser and the code generator: boolean combinations of tests. A test
 * is a self-contained block (statements that compute A, and X when needed, from the packet alone) ending in
 * one conditional jump. Self-containment is what makes every later transformation safe against
 * out-of-bounds loads: a test's value depends only on its statements, so equal statements mean equal
 * values, and a test can be skipped only when the very same statements already ran on every path to it.
 * @module
 */
import type { Insn } from '../insn.ts';

export interface Test {
  readonly stmts: readonly Insn[];
  /** Identity of the value the statements compute (their encoding). */
  readonly key: string;
  /** Jump opcode (JMP | JEQ/JGT/JGE/JSET | K/X). */
  readonly jcode: number;
  readonly k: number;
}

export type Pred =
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'test'; readonly test: Test }
  /** True, once its statements ran: loads whose outcome is known but which may still end the filter. */
  | { readonly kind: 'touch'; readonly test: Test }
  | { readonly kind: 'not'; readonly p: Pred }
  | { readonly kind: 'and' | 'or'; readonly a: Pred; readonly b: Pred };

export const TRUE: Pred = { kind: 'const', value: true };
export const FALSE: Pred = { kind: 'const', value: false };

export function keyOf(stmts: readonly Insn[]): string {
  return stmts.map((s) => `${s.code}.${s.k}`).join(',');
}

export function test(stmts: readonly Insn[], jcode: number, k: number): Pred {
  return { kind: 'test', test: { stmts, key: keyOf(stmts), jcode, k: k >>> 0 } };
}

/** The jump code a touch's block carries: never the code of a real test, so facts never mix them up. */
export const TOUCH_JCODE = 0x05;

/** Statements that must run (a load that may fail) though the comparison they fed is known to hold. */
export function touch(stmts: readonly Insn[]): Pred {
  // Fixed-offset loads fail exactly when the one reaching furthest does: keep only that one.
  const abs = (i: Insn) => i.code === 0x20 || i.code === 0x28 || i.code === 0x30;
  const end = (i: Insn) => i.k + (i.code === 0x20 ? 4 : i.code === 0x28 ? 2 : 1);
  let kept = stmts;
  if (stmts.length > 1 && stmts.every(abs)) kept = [stmts.reduce((a, b) => (end(b) > end(a) ? b : a))];
  return { kind: 'touch', test: { stmts: kept, key: keyOf(kept), jcode: TOUCH_JCODE, k: 0 } };
}

// Constants fold only when no test is dropped: a dropped test's loads could have ended the program.
export function and(a: Pred, b: Pred): Pred {
  if (a.kind === 'const') return a.value ? b : a;
  if (a.kind === 'touch' && b.kind === 'touch') return touch([...a.test.stmts, ...b.test.stmts]);
  if (b.kind === 'const' && b.value) return a;
  return { kind: 'and', a, b };
}

export function or(a: Pred, b: Pred): Pred {
  if (a.kind === 'const') return a.value ? a : b;
  if (b.kind === 'const' && !b.value) return a;
  return { kind: 'or', a, b };
}

export function not(p: Pred): Pred {
  if (p.kind === 'const') return p.value ? FALSE : TRUE;
  if (p.kind === 'not') return p.p;
  return { kind: 'not', p };
}
