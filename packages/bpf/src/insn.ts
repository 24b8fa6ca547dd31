/**
 * The classic BPF instruction set: the instruction record, field extractors and opcode constants
 * (pcap/bpf.h, Linux include/uapi/linux/filter.h).
 * @module
 */

/** One classic BPF instruction, exactly `struct bpf_insn`. All fields are unsigned integers. */
export interface Insn {
  /** Opcode, u16. */
  readonly code: number;
  /** Relative jump offset when a conditional jump's condition holds, u8. */
  readonly jt: number;
  /** Relative jump offset when it does not hold, u8. */
  readonly jf: number;
  /** Generic operand, u32 (stored as a non-negative number, never negative). */
  readonly k: number;
}

/** A program: a sequence of instructions. */
export type Program = readonly Insn[];

/** Linux and libpcap both cap programs at this many instructions (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;
/** Number of scratch memory words (BPF_MEMWORDS). */
export const BPF_MEMWORDS = 16;

// Classes.
export const LD = 0x00;
export const LDX = 0x01;
export const ST = 0x02;
export const STX = 0x03;
export const ALU = 0x04;
export const JMP = 0x05;
export const RET = 0x06;
export const MISC = 0x07;
// Sizes.
export const W = 0x00;
export const H = 0x08;
export const B = 0x10;
// Modes.
export const IMM = 0x00;
export const ABS = 0x20;
export const IND = 0x40;
export const MEM = 0x60;
export const LEN = 0x80;
export const MSH = 0xa0;
// ALU operations.
export const ADD = 0x00;
export const SUB = 0x10;
export const MUL = 0x20;
export const DIV = 0x30;
export const OR = 0x40;
export const AND = 0x50;
export const LSH = 0x60;
export const RSH = 0x70;
export const NEG = 0x80;
export const MOD = 0x90;
export const XOR = 0xa0;
// Jumps.
export const JA = 0x00;
export const JEQ = 0x10;
export const JGT = 0x20;
export const JGE = 0x30;
export const JSET = 0x40;
// Sources.
export const K = 0x00;
export const X = 0x08;
/** RET's A source (BPF_A). */
export const A = 0x10;
// MISC operations.
export const TAX = 0x00;
export const TXA = 0x80;

export const bpfClass = (code: number): number => code & 0x07;
export const bpfSize = (code: number): number => code & 0x18;
export const bpfMode = (code: number): number => code & 0xe0;
export const bpfOp = (code: number): number => code & 0xf0;
export const bpfSrc = (code: number): number => code & 0x08;
export const bpfRval = (code: number): number => code & 0x18;
export const bpfMiscOp = (code: number): number => code & 0xf8;

/** Linux's ancillary and negative-offset loads start here (SKF_LL_OFF = -0x200000, as u32). */
export const SKF_LL_OFF = 0xffe00000;
/** Start of Linux ancillary data (SKF_AD_OFF = -0x1000, as u32). */
export const SKF_AD_OFF = 0xfffff000;

/** Builds a statement (no jump offsets). */
export function stmt(code: number, k: number): Insn {
  return { code, jt: 0, jf: 0, k: k >>> 0 };
}

/** Builds a jump. */
export function jump(code: number, k: number, jt: number, jf: number): Insn {
  return { code, jt, jf, k: k >>> 0 };
}

/**
 * The exact opcode whitelist of Linux's bpf_check_classic (net/core/filter.c), which is also the set
 * libpcap's bpf_filter implements without abort(). Ancillary loads are a property of k, not the opcode.
 */
export const VALID_OPCODES: ReadonlySet<number> = new Set([
  // ALU
  ...[ADD, SUB, MUL, DIV, MOD, AND, OR, XOR, LSH, RSH].flatMap((op) => [ALU | op | K, ALU | op | X]),
  ALU | NEG,
  // Loads into A
  LD | W | ABS,
  LD | H | ABS,
  LD | B | ABS,
  LD | W | LEN,
  LD | W | IND,
  LD | H | IND,
  LD | B | IND,
  LD | IMM,
  LD | MEM,
  // Loads into X
  LDX | W | LEN,
  LDX | B | MSH,
  LDX | IMM,
  LDX | MEM,
  // Stores
  ST,
  STX,
  // Register moves
  MISC | TAX,
  MISC | TXA,
  // Returns
  RET | K,
  RET | A,
  // Jumps
  JMP | JA,
  ...[JEQ, JGT, JGE, JSET].flatMap((op) => [JMP | op | K, JMP | op | X]),
]);

/** True when the instruction is a conditional jump (jt/jf meaningful). */
export function isCondJump(code: number): boolean {
  return bpfClass(code) === JMP && bpfOp(code) !== JA;
}

/** True when the instruction reads the packet (and so may end the program with 0). */
export function isPacketLoad(code: number): boolean {
  const cls = bpfClass(code);
  if (cls === LD) {
    const mode = bpfMode(code);
    return mode === ABS || mode === IND;
  }
  return cls === LDX && bpfMode(code) === MSH;
}

/** Checks the field ranges of one instruction; returns a message, or undefined if they are fine. */
export function insnFieldError(insn: unknown): string | undefined {
  if (typeof insn !== 'object' || insn === null) return 'expected an instruction object {code, jt, jf, k}';
  const { code, jt, jf, k } = insn as Record<string, unknown>;
  if (!isUint(code, 0xffff)) return `code must be an integer 0..65535, got ${String(code)}`;
  if (!isUint(jt, 0xff)) return `jt must be an integer 0..255, got ${String(jt)}`;
  if (!isUint(jf, 0xff)) return `jf must be an integer 0..255, got ${String(jf)}`;
  if (!isUint(k, 0xffffffff)) return `k must be an integer 0..4294967295, got ${String(k)}`;
  return undefined;
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/**
 * Folds an ALU operation (op = code & 0xf0) on two constants as the BPF machine computes it: unsigned 32-bit,
 * shifts by 32 or more give 0 (libpcap). Undefined for division or modulus by zero and for NEG.
 */
export function fold(op: number, a: number, b: number): number | undefined {
  switch (op) {
    case 0x00:
      return (a + b) >>> 0;
    case 0x10:
      return (a - b) >>> 0;
    case 0x20:
      return Math.imul(a, b) >>> 0;
    case 0x30:
      return b === 0 ? undefined : Math.floor(a / b) >>> 0;
    case 0x90:
      return b === 0 ? undefined : (a % b) >>> 0;
    case 0x40:
      return (a | b) >>> 0;
    case 0x50:
      return (a & b) >>> 0;
    case 0xa0:
      return (a ^ b) >>> 0;
    case 0x60:
      return b < 32 ? (a << b) >>> 0 : 0;
    case 0x70:
      return b < 32 ? a >>> b : 0;
  }
  return undefined;
}

/** The instructions some jump lands on (where generated code must be able to enter). */
export function jumpTargets(p: Program): Set<number> {
  const targets = new Set<number>();
  for (let pc = 0; pc < p.length; pc++) {
    const { code, jt, jf, k } = p[pc]!;
    if (bpfClass(code) !== JMP) continue;
    if (bpfOp(code) === JA) {
      if (k > 0) targets.add(pc + 1 + k);
    } else {
      if (jt > 0) targets.add(pc + 1 + jt);
      if (jf > 0) targets.add(pc + 1 + jf);
    }
  }
  return targets;
}
