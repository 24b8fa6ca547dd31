/**
 * Compiles verified programs to JavaScript that V8 optimises: one function per program, straight-line
 * code with forward jumps as `break` out of labelled blocks, registers and scratch words as locals (the
 * per-packet path allocates nothing). Semantics are the interpreter's (libpcap's), exactly.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import { bpfClass, bpfOp, type Insn, JA, JMP, jumpTargets, type Program } from './insn.ts';
import { interpret } from './interpreter.ts';
import { verifyProgram } from './verifier.ts';

/** A compiled filter: same contract as {@link interpret} with the program bound. */
export type CompiledFilter = (pkt: Uint8Array, wirelen: number, buflen: number) => number;

// A, X and the scratch words are kept as int32 values (V8 then keeps them in 32-bit registers, where
// uint32 values above 2^31 would become doubles); unsigned meaning is restored only where it matters:
// ordered comparisons, division, shift counts and the returned value.

function load(size: 1 | 2 | 4, at: string): string {
  if (size === 1) return `P[${at}]`;
  if (size === 2) return `((P[${at}] << 8) | P[${at} + 1])`;
  return `((P[${at}] << 24) | (P[${at} + 1] << 16) | (P[${at} + 2] << 8) | P[${at} + 3])`;
}

/**
 * How a generated function refers to an instruction's k where k is data rather than structure: `int32` as
 * the int32 value, `uint32` as the unsigned one. {@link inlineK} writes literals; the shared-shape compiler
 * pools them instead (see {@link compileProgramShared}).
 */
type ConstRef = (k: number, as: 'int32' | 'uint32') => string;

const inlineK: ConstRef = (k, as) => String(as === 'int32' ? k | 0 : k >>> 0);

/**
 * JavaScript for one non-jump instruction (each ends a statement). Packet offsets and scratch indexes stay
 * literals (they are the program's structure: bounds checks fold with them); every other k goes through `c`.
 */
function stmtJs(insn: Insn, c: ConstRef = inlineK): string {
  const k = insn.k >>> 0;
  switch (insn.code) {
    case 0x06:
      return `return ${c(k, 'uint32')};`;
    case 0x16:
      return 'return A >>> 0;';
    case 0x20:
      return `if (${k + 4} > L) return 0; A = ${load(4, String(k))};`;
    case 0x28:
      return `if (${k + 2} > L) return 0; A = ${load(2, String(k))};`;
    case 0x30:
      return `if (${k + 1} > L) return 0; A = P[${k}];`;
    case 0x80:
      return 'A = W;';
    case 0x81:
      return 'X = W;';
    case 0x40:
      return `T = (X >>> 0) + ${k}; if (T + 4 > L) return 0; A = ${load(4, 'T')};`;
    case 0x48:
      return `T = (X >>> 0) + ${k}; if (T + 2 > L) return 0; A = ${load(2, 'T')};`;
    case 0x50:
      return `T = (X >>> 0) + ${k}; if (T + 1 > L) return 0; A = P[T];`;
    case 0xb1:
      return `if (${k + 1} > L) return 0; X = (P[${k}] & 15) << 2;`;
    case 0x00:
      return `A = ${c(k, 'int32')};`;
    case 0x01:
      return `X = ${c(k, 'int32')};`;
    case 0x60:
      return `A = m${k};`;
    case 0x61:
      return `X = m${k};`;
    case 0x02:
      return `m${k} = A;`;
    case 0x03:
      return `m${k} = X;`;
    case 0x0c:
      return 'A = (A + X) | 0;';
    case 0x1c:
      return 'A = (A - X) | 0;';
    case 0x2c:
      return 'A = Math.imul(A, X);';
    case 0x3c:
      return 'if (X === 0) return 0; A = ((A >>> 0) / (X >>> 0)) | 0;';
    case 0x9c:
      return 'if (X === 0) return 0; A = ((A >>> 0) % (X >>> 0)) | 0;';
    case 0x5c:
      return 'A = A & X;';
    case 0x4c:
      return 'A = A | X;';
    case 0xac:
      return 'A = A ^ X;';
    case 0x6c:
      return 'A = (X >>> 0) < 32 ? A << X : 0;';
    case 0x7c:
      return 'A = (X >>> 0) < 32 ? (A >>> X) | 0 : 0;';
    case 0x04:
      return `A = (A + ${c(k, 'int32')}) | 0;`;
    case 0x14:
      return `A = (A - ${c(k, 'int32')}) | 0;`;
    case 0x24:
      return `A = Math.imul(A, ${c(k, 'int32')});`;
    case 0x34:
      return `A = ((A >>> 0) / ${c(k, 'uint32')}) | 0;`;
    case 0x94:
      return `A = ((A >>> 0) % ${c(k, 'uint32')}) | 0;`;
    case 0x54:
      return `A = A & ${c(k, 'int32')};`;
    case 0x44:
      return `A = A | ${c(k, 'int32')};`;
    case 0xa4:
      return `A = A ^ ${c(k, 'int32')};`;
    case 0x64:
      return `A = A << ${c(k, 'uint32')};`;
    case 0x74:
      return `A = (A >>> ${c(k, 'uint32')}) | 0;`;
    case 0x84:
      return 'A = -A | 0;';
    case 0x07:
      return 'X = A;';
    case 0x87:
      return 'A = X;';
  }
  throw new Error(`compiler: opcode 0x${insn.code.toString(16)} passed the verifier but has no translation`);
}

function condJs(insn: Insn, c: ConstRef = inlineK): string {
  const k = insn.k >>> 0;
  switch (insn.code) {
    case 0x15:
      return `A === ${c(k, 'int32')}`;
    case 0x25:
      return `(A >>> 0) > ${c(k, 'uint32')}`;
    case 0x35:
      return `(A >>> 0) >= ${c(k, 'uint32')}`;
    case 0x45:
      return `(A & ${c(k, 'int32')}) !== 0`;
    case 0x1d:
      return 'A === X';
    case 0x2d:
      return '(A >>> 0) > (X >>> 0)';
    case 0x3d:
      return '(A >>> 0) >= (X >>> 0)';
    case 0x4d:
      return '(A & X) !== 0';
  }
  throw new Error(`compiler: jump 0x${insn.code.toString(16)} has no translation`);
}

/** The JavaScript source of a verified program's filter function body (exported for tests and docs). */
export function programToJs(p: Program, c: ConstRef = inlineK): string {
  const len = p.length;
  const targets = jumpTargets(p);
  const used = new Set<number>();
  for (const insn of p) if ([0x60, 0x61, 0x02, 0x03].includes(insn.code)) used.add(insn.k);
  const lines: string[] = [];
  lines.push('"use strict";');
  lines.push('const W = wirelen | 0;');
  lines.push('const L = Math.min(buflen >>> 0, P.length);');
  lines.push(`let A = 0, X = 0, T = 0${[...used].map((m) => `, m${m} = 0`).join('')};`);
  if (targets.size > MAX_NESTED_TARGETS) return dispatchLoopJs(p, targets, lines, c);
  // Every jump target t is the end of a block labelled Lt that opens at the top: blocks nest by target.
  const sorted = [...targets].sort((a, b) => b - a);
  for (const t of sorted) lines.push(`L${t}: {`);
  for (let pc = 0; pc < len; pc++) {
    if (targets.has(pc)) lines.push(`} // L${pc}`);
    const insn = p[pc]!;
    if (bpfClass(insn.code) !== JMP) {
      lines.push(stmtJs(insn, c));
      continue;
    }
    if (bpfOp(insn.code) === JA) {
      if (insn.k > 0) lines.push(`break L${pc + 1 + insn.k};`);
      continue;
    }
    const cond = condJs(insn, c);
    const tl = insn.jt > 0 ? `break L${pc + 1 + insn.jt};` : '';
    const fl = insn.jf > 0 ? `break L${pc + 1 + insn.jf};` : '';
    if (tl && fl) lines.push(`if (${cond}) ${tl} else ${fl}`);
    else if (tl) lines.push(`if (${cond}) ${tl}`);
    else if (fl) lines.push(`if (!(${cond})) ${fl}`);
  }
  // Unreachable: verified programs end in RET.
  lines.push('return 0;');
  return lines.join('\n');
}

/**
 * Programs with many jump targets would nest too deeply for V8's parser; they become a dispatch loop
 * (a switch on pc whose cases fall through), slower but with the same semantics.
 */
const MAX_NESTED_TARGETS = 512;

function dispatchLoopJs(p: Program, targets: ReadonlySet<number>, lines: string[], c: ConstRef): string {
  lines.push('let pc = 0;', 'for (;;) {', 'switch (pc) {', 'case 0:');
  for (let pc = 0; pc < p.length; pc++) {
    if (pc > 0 && targets.has(pc)) lines.push(`case ${pc}:`);
    const insn = p[pc]!;
    if (bpfClass(insn.code) !== JMP) {
      lines.push(stmtJs(insn, c));
      continue;
    }
    if (bpfOp(insn.code) === JA) {
      if (insn.k > 0) lines.push(`pc = ${pc + 1 + insn.k}; continue;`);
      continue;
    }
    const cond = condJs(insn, c);
    const tl = insn.jt > 0 ? `{ pc = ${pc + 1 + insn.jt}; continue; }` : '';
    const fl = insn.jf > 0 ? `{ pc = ${pc + 1 + insn.jf}; continue; }` : '';
    if (tl && fl) lines.push(`if (${cond}) ${tl} else ${fl}`);
    else if (tl) lines.push(`if (${cond}) ${tl}`);
    else if (fl) lines.push(`if (!(${cond})) ${fl}`);
  }
  lines.push('}', 'return 0;', '}');
  return lines.join('\n');
}

/**
 * Verifies a program and compiles it to a JavaScript function (generated source, optimised by V8).
 * The result agrees with {@link interpret} on every packet.
 * @throws {@link BpfError} EXO_ERR_BPF_VERIFY when the verifier rejects the program
 */
export function compileProgram(p: Program): CompiledFilter {
  const v = verifyProgram(p);
  if (!v.ok) {
    throw new BpfError(BpfErrorCode.VERIFY, `program rejected: ${v.message}`, { index: v.index, rule: v.rule });
  }
  // The source is built only from verified numeric fields: nothing from the caller reaches it as text.
  try {
    return new Function('P', 'wirelen', 'buflen', programToJs(p)) as CompiledFilter;
  } catch (e) {
    // Code generation disallowed (node --disallow-code-generation-from-strings, a CSP): the interpreter
    // gives the same results, only slower.
    if (!(e instanceof EvalError)) throw e;
    const program = [...p];
    return (pkt, wirelen, buflen) => interpret(program, pkt, wirelen, buflen);
  }
}

/**
 * A shape's factory: given one filter's pooled constants, returns that filter's function. Every function a
 * factory returns is a closure over the same function literal, so they share one SharedFunctionInfo, one
 * feedback vector and one optimised code object.
 */
type ShapeFactory = (k: readonly number[]) => CompiledFilter;

/**
 * Shapes kept, most recently used last (a Map iterates in insertion order). Bounded both in count and in
 * total source length, so that a stream of distinct shapes (a hostile or merely diverse set of tasks)
 * cannot grow memory without limit: an evicted shape's filters keep working (each holds its code), a
 * later program of that shape just gets a fresh factory.
 */
const shapeCache = new Map<string, ShapeFactory>();
let shapeCacheChars = 0;
/** At most this many shapes cached... */
export const MAX_SHARED_SHAPES = 1024;
/** ...and at most this many characters of shape source (a 4096-instruction shape is about 200 kB). */
export const MAX_SHARED_SHAPE_CHARS = 16 * 1024 * 1024;

/** The number of shapes cached now and their total source length (for tests). */
export function sharedShapeCacheStats(): { shapes: number; chars: number } {
  return { shapes: shapeCache.size, chars: shapeCacheChars };
}

/**
 * A program split into its shape and its constants: the source of {@link programToJs} with every data
 * constant (comparison operands, ALU operands, immediates, return values) read from a variable `k<i>`
 * instead of written as a literal, and the values of those variables. Packet offsets, scratch indexes and
 * jumps are structure and stay in the source, so programs share a shape exactly when they differ only in
 * data constants (`udp dst port N` for every N).
 */
export function programShape(p: Program): { source: string; values: number[] } {
  const values: number[] = [];
  const ref: ConstRef = (k, as) => {
    values.push(as === 'int32' ? k | 0 : k >>> 0);
    return `k${values.length - 1}`;
  };
  return { source: programToJs(p, ref), values };
}

function shapeFactory(source: string, count: number): ShapeFactory {
  const hit = shapeCache.get(source);
  if (hit !== undefined) {
    shapeCache.delete(source);
    shapeCache.set(source, hit);
    return hit;
  }
  // The constants become variables of the factory's scope, read once per filter rather than per packet.
  // Measured against one shared function taking the constants as a fourth argument through a per-filter
  // wrapper: at 10,000 filters of one shape the closures cost 19 ns a packet, the wrapper 35 ns.
  const decl = count > 0 ? `const ${Array.from({ length: count }, (_, i) => `k${i} = K[${i}]`).join(', ')};\n` : '';
  const factory = new Function(
    'K',
    `"use strict";\n${decl}return function bpfShape(P, wirelen, buflen) {\n${source}\n};`,
  ) as ShapeFactory;
  shapeCache.set(source, factory);
  shapeCacheChars += source.length;
  for (const [old] of shapeCache) {
    if (shapeCache.size <= MAX_SHARED_SHAPES && shapeCacheChars <= MAX_SHARED_SHAPE_CHARS) break;
    if (old === source) break; // never evict the shape just added, however large
    shapeCache.delete(old);
    shapeCacheChars -= old.length;
  }
  return factory;
}

/**
 * Verifies a program and compiles it like {@link compileProgram}, but programs that differ only in their data
 * constants share one generated function: the result is a closure over this program's constants, its code
 * that of every program of the same shape (see {@link programShape}). The engine for holding many similar
 * filters at once (a driver's one-port-per-task filters): one function that V8 optimises once and call sites
 * that stay monomorphic, where {@link compileProgram} gives each filter its own function that is called too
 * rarely to be optimised. On a single hot filter the two run at the same speed (`exonet bench bpf`).
 * The result agrees with {@link interpret} on every packet.
 * @throws {@link BpfError} EXO_ERR_BPF_VERIFY when the verifier rejects the program
 */
export function compileProgramShared(p: Program): CompiledFilter {
  const v = verifyProgram(p);
  if (!v.ok) {
    throw new BpfError(BpfErrorCode.VERIFY, `program rejected: ${v.message}`, { index: v.index, rule: v.rule });
  }
  // As in compileProgram, the source is built only from verified numeric fields.
  const { source, values } = programShape(p);
  try {
    return shapeFactory(source, values.length)(values);
  } catch (e) {
    if (!(e instanceof EvalError)) throw e;
    const program = [...p];
    return (pkt, wirelen, buflen) => interpret(program, pkt, wirelen, buflen);
  }
}
