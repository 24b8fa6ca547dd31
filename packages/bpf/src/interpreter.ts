/**
 * The reference interpreter, with libpcap's bpf_filter semantics exactly (bpf_filter.c).
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import type { Insn, Program } from './insn.ts';

const mem = new Uint32Array(16);

/**
 * Runs a program on one packet, as libpcap's `bpf_filter(pc, pkt, wirelen, buflen)` does.
 *
 * - `wirelen` is the packet's original length (what `len` and LD|LEN see); `buflen` the number of bytes
 *   captured, which bounds every packet load. `buflen` is clamped to `pkt.length`.
 * - A load past `buflen` ends the program with 0. DIV/MOD by X = 0 return 0. LSH/RSH by X >= 32 give 0
 *   (libpcap's rule; JavaScript's own shifts would mask the count by 31). Arithmetic and comparisons are
 *   unsigned 32-bit.
 *
 * Meant for verified programs: on an unverified one it still never loops or crashes, but an instruction
 * libpcap would abort() on throws a {@link BpfError} (EXO_ERR_BPF_VERIFY).
 * @returns the number of bytes to keep (0: drop), as an unsigned 32-bit number
 */
export function interpret(p: Program, pkt: Uint8Array, wirelen: number, buflen: number): number {
  // One scratch area for every call: the interpreter is synchronous and not re-entrant, and the
  // per-packet path allocates nothing. Instead of zeroing it on every call, a bit set records the words
  // this call stored, and a word it did not store reads as 0: even unverified programs are deterministic.
  let written = 0;
  let A = 0;
  let X = 0;
  const wire = wirelen >>> 0;
  const blen = Math.min(buflen >>> 0, pkt.length);
  const len = p.length;
  let pc = 0;
  let k = 0;
  let insn: Insn;
  for (;;) {
    if (pc >= len) throw abort(pc, 'fell off the end of the program');
    insn = p[pc] as Insn;
    k = insn.k;
    pc++;
    switch (insn.code) {
      case 0x06: // ret #k
        return k >>> 0;
      case 0x16: // ret a
        return A >>> 0;
      case 0x20: // ld [k]
        if (k > blen || 4 > blen - k) return 0;
        A = ((pkt[k]! << 24) | (pkt[k + 1]! << 16) | (pkt[k + 2]! << 8) | pkt[k + 3]!) >>> 0;
        break;
      case 0x28: // ldh [k]
        if (k > blen || 2 > blen - k) return 0;
        A = (pkt[k]! << 8) | pkt[k + 1]!;
        break;
      case 0x30: // ldb [k]
        if (k >= blen) return 0;
        A = pkt[k]!;
        break;
      case 0x80: // ld #pktlen
        A = wire;
        break;
      case 0x81: // ldx #pktlen
        X = wire;
        break;
      case 0x40: // ld [x + k]
        if (k > blen || X > blen - k || 4 > blen - k - X) return 0;
        k += X;
        A = ((pkt[k]! << 24) | (pkt[k + 1]! << 16) | (pkt[k + 2]! << 8) | pkt[k + 3]!) >>> 0;
        break;
      case 0x48: // ldh [x + k]
        if (k > blen || X > blen - k || 2 > blen - k - X) return 0;
        k += X;
        A = (pkt[k]! << 8) | pkt[k + 1]!;
        break;
      case 0x50: // ldb [x + k]
        if (k > blen || X >= blen - k) return 0;
        A = pkt[k + X]!;
        break;
      case 0xb1: // ldxb 4*([k]&0xf)
        if (k >= blen) return 0;
        X = (pkt[k]! & 0xf) << 2;
        break;
      case 0x00: // ld #k
        A = k;
        break;
      case 0x01: // ldx #k
        X = k;
        break;
      case 0x60: // ld M[k]
        if (k >= 16) throw abort(pc - 1, `scratch index ${k} out of range`);
        A = written & (1 << k) ? mem[k]! : 0;
        break;
      case 0x61: // ldx M[k]
        if (k >= 16) throw abort(pc - 1, `scratch index ${k} out of range`);
        X = written & (1 << k) ? mem[k]! : 0;
        break;
      case 0x02: // st M[k]
        if (k >= 16) throw abort(pc - 1, `scratch index ${k} out of range`);
        mem[k] = A;
        written |= 1 << k;
        break;
      case 0x03: // stx M[k]
        if (k >= 16) throw abort(pc - 1, `scratch index ${k} out of range`);
        mem[k] = X;
        written |= 1 << k;
        break;
      case 0x05: // ja
        pc += k;
        break;
      case 0x15: // jeq #k
        pc += A === k ? insn.jt : insn.jf;
        break;
      case 0x25: // jgt #k
        pc += A > k ? insn.jt : insn.jf;
        break;
      case 0x35: // jge #k
        pc += A >= k ? insn.jt : insn.jf;
        break;
      case 0x45: // jset #k
        pc += (A & k) !== 0 ? insn.jt : insn.jf;
        break;
      case 0x1d: // jeq x
        pc += A === X ? insn.jt : insn.jf;
        break;
      case 0x2d: // jgt x
        pc += A > X ? insn.jt : insn.jf;
        break;
      case 0x3d: // jge x
        pc += A >= X ? insn.jt : insn.jf;
        break;
      case 0x4d: // jset x
        pc += (A & X) !== 0 ? insn.jt : insn.jf;
        break;
      case 0x0c: // add x
        A = (A + X) >>> 0;
        break;
      case 0x1c: // sub x
        A = (A - X) >>> 0;
        break;
      case 0x2c: // mul x
        A = Math.imul(A, X) >>> 0;
        break;
      case 0x3c: // div x
        if (X === 0) return 0;
        A = Math.floor(A / X) >>> 0;
        break;
      case 0x9c: // mod x
        if (X === 0) return 0;
        A = (A % X) >>> 0;
        break;
      case 0x5c: // and x
        A = (A & X) >>> 0;
        break;
      case 0x4c: // or x
        A = (A | X) >>> 0;
        break;
      case 0xac: // xor x
        A = (A ^ X) >>> 0;
        break;
      case 0x6c: // lsh x
        A = X < 32 ? (A << X) >>> 0 : 0;
        break;
      case 0x7c: // rsh x
        A = X < 32 ? A >>> X : 0;
        break;
      case 0x04: // add #k
        A = (A + k) >>> 0;
        break;
      case 0x14: // sub #k
        A = (A - k) >>> 0;
        break;
      case 0x24: // mul #k
        A = Math.imul(A, k) >>> 0;
        break;
      case 0x34: // div #k (the verifier rejects k = 0; keep libpcap's X rule if it gets here anyway)
        if (k === 0) return 0;
        A = Math.floor(A / k) >>> 0;
        break;
      case 0x94: // mod #k
        if (k === 0) return 0;
        A = (A % k) >>> 0;
        break;
      case 0x54: // and #k
        A = (A & k) >>> 0;
        break;
      case 0x44: // or #k
        A = (A | k) >>> 0;
        break;
      case 0xa4: // xor #k
        A = (A ^ k) >>> 0;
        break;
      case 0x64: // lsh #k
        A = k < 32 ? (A << k) >>> 0 : 0;
        break;
      case 0x74: // rsh #k
        A = k < 32 ? A >>> k : 0;
        break;
      case 0x84: // neg
        A = -A >>> 0;
        break;
      case 0x07: // tax
        X = A;
        break;
      case 0x87: // txa
        A = X;
        break;
      default:
        throw abort(pc - 1, `opcode 0x${insn.code.toString(16)} that libpcap would abort() on`);
    }
  }
}

function abort(pc: number, what: string): BpfError {
  return new BpfError(BpfErrorCode.VERIFY, `unverified program: instruction ${pc}: ${what}`, { index: pc });
}
