/**
 * Conjunction of two verified programs: the permission server's tool for keeping a task's filter inside
 * what the policy allows.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import {
  A,
  ALU,
  BPF_MAXINSNS,
  bpfClass,
  bpfMiscOp,
  bpfMode,
  bpfOp,
  bpfRval,
  bpfSrc,
  IMM,
  type Insn,
  JA,
  JEQ,
  JMP,
  jump,
  K,
  LD,
  LDX,
  MISC,
  NEG,
  type Program,
  RET,
  STX,
  stmt,
  TAX,
  TXA,
  X,
} from './insn.ts';
import { verifyProgram } from './verifier.ts';

/**
 * Builds a program that accepts a packet exactly when both `a` and `b` accept it.
 *
 * Return value: 0 when either returns 0; otherwise **b's** value. (So the caller picks which snap length
 * wins by the order: the permission server puts the task's requested filter as `b`.) `a` runs first; if
 * it accepts, A and X are reset to 0 (only when `b` reads them before writing them) and `b` runs as if
 * alone. Scratch memory needs no reset: a verified `b` never reads a word it has not stored.
 *
 * The layout keeps `a`'s instructions one for one (every RET becomes a jump of the same length, so `a`'s
 * 8-bit jump offsets stay valid): `a'`, an optional `ret a` stub, the reset, then `b` unchanged.
 * @throws {@link BpfError} EXO_ERR_BPF_VERIFY if either input is rejected by the verifier,
 *   EXO_ERR_BPF_TOO_LONG if the result would exceed 4096 instructions
 */
export function conjoin(a: Program, b: Program): Program {
  for (const [name, p] of [
    ['a', a],
    ['b', b],
  ] as const) {
    const v = verifyProgram(p);
    if (!v.ok) {
      throw new BpfError(BpfErrorCode.VERIFY, `conjoin: program ${name} rejected: ${v.message}`, {
        index: v.index,
        rule: v.rule,
      });
    }
  }
  const hasRetA = a.some((i) => i.code === (RET | A));
  const reads = initialRegisterReads(b);
  const reset: Insn[] = [];
  if (reads.a) reset.push(stmt(LD | IMM, 0));
  if (reads.x) reset.push(stmt(LDX | IMM, 0));
  const stub: Insn[] = hasRetA ? [jump(JMP | JEQ | K, 0, 0, 1), stmt(RET | K, 0)] : [];
  const total = a.length + stub.length + reset.length + b.length;
  if (total > BPF_MAXINSNS) {
    throw new BpfError(
      BpfErrorCode.TOO_LONG,
      `conjoin: the result would have ${total} instructions, more than ${BPF_MAXINSNS}`,
    );
  }
  const stubAt = a.length;
  const glueAt = a.length + stub.length;
  const out: Insn[] = a.map((insn, i) => {
    if (insn.code === (RET | K)) return insn.k === 0 ? insn : stmt(JMP | JA, glueAt - (i + 1));
    if (insn.code === (RET | A)) return stmt(JMP | JA, stubAt - (i + 1));
    return insn;
  });
  out.push(...stub, ...reset, ...b);
  const check = verifyProgram(out);
  if (!check.ok) throw new Error(`conjoin produced an unverifiable program (a bug): ${check.message}`);
  return out;
}

/**
 * Whether a program may read the initial value of A or of X (0 at entry) before writing it, on some
 * path. Forward dataflow of "written on every path" over the forward-only control flow.
 */
export function initialRegisterReads(p: Program): { a: boolean; x: boolean } {
  const len = p.length;
  // Bit 1: A written; bit 2: X written. 3 = "unreached so far" as the meet's identity.
  const entry = new Uint8Array(len).fill(3);
  entry[0] = 0;
  let state = 0;
  let falls = true;
  let readsA = false;
  let readsX = false;
  for (let pc = 0; pc < len; pc++) {
    state = falls ? state & entry[pc]! : entry[pc]!;
    falls = true;
    const { code, jt, jf, k } = p[pc]!;
    const cls = bpfClass(code);
    const useA = () => {
      if ((state & 1) === 0) readsA = true;
    };
    const useX = () => {
      if ((state & 2) === 0) readsX = true;
    };
    switch (cls) {
      case LD:
        if (bpfMode(code) === 0x40) useX(); // IND
        state |= 1;
        break;
      case LDX:
        state |= 2;
        break;
      case 0x02: // ST
        useA();
        break;
      case STX:
        useX();
        break;
      case ALU:
        useA();
        if (bpfOp(code) !== NEG && bpfSrc(code) === X) useX();
        state |= 1;
        break;
      case JMP:
        if (bpfOp(code) === JA) entry[pc + 1 + k]! &= state;
        else {
          useA();
          if (bpfSrc(code) === X) useX();
          entry[pc + 1 + jt]! &= state;
          entry[pc + 1 + jf]! &= state;
        }
        falls = false;
        break;
      case RET:
        if (bpfRval(code) === A) useA();
        falls = false;
        break;
      case MISC:
        if (bpfMiscOp(code) === TAX) {
          useA();
          state |= 2;
        } else if (bpfMiscOp(code) === TXA) {
          useX();
          state |= 1;
        }
        break;
    }
  }
  return { a: readsA, x: readsX };
}
