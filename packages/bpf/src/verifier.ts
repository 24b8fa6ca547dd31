/**
 * The kernel-grade verifier. It applies Linux's bpf_check_classic rules (net/core/filter.c), which are
 * strictly tighter than libpcap's bpf_validate, so every accepted program is also accepted by
 * bpf_validate and never makes libpcap's bpf_filter abort(). See docs/bpf.md for the rule list.
 * @module
 */
import {
  ALU,
  BPF_MAXINSNS,
  BPF_MEMWORDS,
  bpfClass,
  bpfMode,
  bpfOp,
  bpfSrc,
  DIV,
  type Insn,
  insnFieldError,
  isPacketLoad,
  JA,
  JMP,
  K,
  LD,
  LDX,
  LSH,
  MEM,
  MOD,
  type Program,
  RET,
  RSH,
  SKF_LL_OFF,
  ST,
  STX,
  VALID_OPCODES,
} from './insn.ts';

/** Names of the verifier's rules, as they appear in {@link VerifyResult}. Stable: tests and callers match them. */
export type VerifyRule =
  | 'not-a-program'
  | 'length'
  | 'field-range'
  | 'opcode'
  | 'ancillary-load'
  | 'scratch-index'
  | 'div-by-zero'
  | 'shift-range'
  | 'jump-range'
  | 'last-not-ret'
  | 'scratch-uninit';

/** The verifier's verdict: accepted, or the first broken rule and the instruction that breaks it. */
export type VerifyResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly index: number; readonly rule: VerifyRule; readonly message: string };

function fail(index: number, rule: VerifyRule, message: string): VerifyResult {
  return { ok: false, index, rule, message: `instruction ${index}: ${message}` };
}

/**
 * Checks a program against the verifier's rules. Never throws, whatever it is given.
 *
 * Rules, in the order they are checked (the first failure is reported):
 * - `length`: 1 to 4096 instructions;
 * - per instruction: `field-range` (code u16, jt/jf u8, k u32), `opcode` (Linux's exact whitelist),
 *   `ancillary-load` (no packet load at k >= 0xffe00000: Linux gives those offsets other meanings),
 *   `scratch-index` (M[k] with k < 16), `div-by-zero` (no DIV/MOD by constant 0), `shift-range` (no
 *   LSH/RSH by constant >= 32), `jump-range` (every jump target inside the program; jumps are forward
 *   by construction, so a program runs at most its length in steps);
 * - `last-not-ret`: the last instruction is RET K or RET A;
 * - `scratch-uninit`: every read of M[k] is preceded by a store to M[k] on every path to it.
 */
export function verifyProgram(p: Program): VerifyResult {
  if (!Array.isArray(p)) return fail(0, 'not-a-program', 'expected an array of instructions');
  const len = p.length;
  if (len < 1 || len > BPF_MAXINSNS) {
    return fail(len === 0 ? 0 : BPF_MAXINSNS, 'length', `expected 1 to ${BPF_MAXINSNS} instructions, got ${len}`);
  }
  for (let pc = 0; pc < len; pc++) {
    const problem = insnFieldError(p[pc]);
    if (problem) return fail(pc, 'field-range', problem);
    const { code, jt, jf, k } = p[pc] as Insn;
    if (!VALID_OPCODES.has(code)) return fail(pc, 'opcode', `unknown or unsupported opcode 0x${code.toString(16)}`);
    const cls = bpfClass(code);
    if (isPacketLoad(code) && k >= SKF_LL_OFF) {
      return fail(pc, 'ancillary-load', `packet offset 0x${k.toString(16)} is in Linux's ancillary/negative range`);
    }
    if (((cls === LD || cls === LDX) && bpfMode(code) === MEM) || cls === ST || cls === STX) {
      if (k >= BPF_MEMWORDS) return fail(pc, 'scratch-index', `scratch index ${k} is not below ${BPF_MEMWORDS}`);
    }
    if (cls === ALU && bpfSrc(code) === K) {
      const op = bpfOp(code);
      if ((op === DIV || op === MOD) && k === 0) return fail(pc, 'div-by-zero', 'division or modulus by constant 0');
      if ((op === LSH || op === RSH) && k >= 32) return fail(pc, 'shift-range', `shift by constant ${k} >= 32`);
    }
    if (cls === JMP) {
      if (bpfOp(code) === JA) {
        if (pc + 1 + k >= len) return fail(pc, 'jump-range', `ja target ${pc + 1 + k} is past the last instruction`);
      } else if (pc + 1 + jt >= len || pc + 1 + jf >= len) {
        return fail(pc, 'jump-range', `jump target ${pc + 1 + Math.max(jt, jf)} is past the last instruction`);
      }
    }
  }
  const last = p[len - 1] as Insn;
  if (bpfClass(last.code) !== RET) return fail(len - 1, 'last-not-ret', 'the last instruction must be a return');
  return checkScratchInit(p);
}

/**
 * Forward dataflow over the (acyclic, forward-only) control flow: a bit set of the scratch words stored
 * on every path so far. Like Linux's check_load_and_stores, except that the state after a RET does not
 * flow into the next instruction (it has no fall-through), which only accepts more correct programs.
 */
function checkScratchInit(p: Program): VerifyResult {
  const len = p.length;
  const ALL = (1 << BPF_MEMWORDS) - 1;
  const atEntry = new Uint16Array(len).fill(ALL); // intersection over incoming edges; ALL = unreachable so far
  atEntry[0] = 0;
  let valid = 0;
  let fallsThrough = true;
  for (let pc = 0; pc < len; pc++) {
    valid = fallsThrough ? valid & atEntry[pc]! : atEntry[pc]!;
    fallsThrough = true;
    const { code, jt, jf, k } = p[pc] as Insn;
    const cls = bpfClass(code);
    if (cls === ST || cls === STX) valid |= 1 << k;
    else if ((cls === LD || cls === LDX) && bpfMode(code) === MEM) {
      if ((valid & (1 << k)) === 0) return fail(pc, 'scratch-uninit', `M[${k}] may be read before it is stored`);
    } else if (cls === JMP) {
      if (bpfOp(code) === JA) atEntry[pc + 1 + k]! &= valid;
      else {
        atEntry[pc + 1 + jt]! &= valid;
        atEntry[pc + 1 + jf]! &= valid;
      }
      fallsThrough = false;
    } else if (cls === RET) fallsThrough = false;
  }
  return { ok: true };
}
