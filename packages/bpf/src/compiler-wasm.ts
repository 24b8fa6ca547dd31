/**
 * An alternative compiled engine: verified programs as WebAssembly functions. Measured against the
 * generated JavaScript in `exonet bench bpf` (the JavaScript is faster, mainly because every packet must
 * first be copied into the module's memory), so it is not the default; see docs/bpf.md.
 * @module
 */
import { type CompiledFilter, compileProgram } from './compiler-js.ts';
import { BpfError, BpfErrorCode } from './errors.ts';
import { bpfClass, jumpTargets, type Program } from './insn.ts';
import { verifyProgram } from './verifier.ts';

const u32leb = (v: number): number[] => {
  const out: number[] = [];
  let x = v >>> 0;
  do {
    let b = x & 0x7f;
    x >>>= 7;
    if (x !== 0) b |= 0x80;
    out.push(b);
  } while (x !== 0);
  return out;
};

/** Signed LEB128 of any integer in the i64 range that doubles hold exactly (here: < 2^34). */
const sleb = (v: number): number[] => {
  const out: number[] = [];
  let x = BigInt(v);
  for (;;) {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};

// Opcodes.
const BLOCK = 0x02;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const RETURN = 0x0f;
const IF = 0x04;
const SELECT = 0x1b;
const LGET = 0x20;
const LSET = 0x21;
const I32C = 0x41;
const I64C = 0x42;
const LOAD8U = 0x2d;
const EQZ = 0x45;
const EQ = 0x46;
const GTU = 0x4b;
const GEU = 0x4f;
const LTU = 0x49;
const I64GTU = 0x56;
const ADD = 0x6a;
const SUB = 0x6b;
const MUL = 0x6c;
const DIVU = 0x6e;
const REMU = 0x70;
const AND = 0x71;
const OR = 0x72;
const XOR = 0x73;
const SHL = 0x74;
const SHRU = 0x76;
const I64ADD = 0x7c;
const EXTU = 0xad;
const VOID = 0x40;

// Locals: 0 len, 1 wirelen, 2 A, 3 X, 4..19 M[0..15].
const LEN = 0;
const WIRE = 1;
const RA = 2;
const RX = 3;
const MEM0 = 4;

const i32c = (v: number): number[] => [I32C, ...sleb(v | 0)];
const returnZeroIf = (cond: number[]): number[] => [...cond, IF, VOID, ...i32c(0), RETURN, END];
/** `k + size > len` in 64 bits (no wrap), optionally with X added. */
const outOfBounds = (k: number, size: number, withX: boolean): number[] => [
  ...(withX ? [LGET, RX, EXTU, I64C, ...sleb(k + size), I64ADD] : [I64C, ...sleb(k + size)]),
  LGET,
  LEN,
  EXTU,
  I64GTU,
];
/** Big-endian load of `size` bytes at the address the `addr` code leaves on the stack (evaluated per byte). */
function loadBE(size: number, addr: (i: number) => number[]): number[] {
  const out: number[] = [...addr(0), LOAD8U, 0, 0];
  for (let i = 1; i < size; i++) out.push(...i32c(8), SHL, ...addr(i), LOAD8U, 0, 0, OR);
  return out;
}

const ALU: Record<number, number> = {
  0: ADD,
  16: SUB,
  32: MUL,
  48: DIVU,
  144: REMU,
  64: OR,
  80: AND,
  160: XOR,
  96: SHL,
  112: SHRU,
};
const CMP: Record<number, number> = { 16: EQ, 32: GTU, 48: GEU };

function body(p: Program): number[] {
  const len = p.length;
  const targets = jumpTargets(p);
  const sorted = [...targets].sort((a, b) => b - a);
  const out: number[] = [];
  for (let i = 0; i < sorted.length; i++) out.push(BLOCK, VOID);
  // Open blocks at pc: targets > pc; branch depth to t = number of open targets below t.
  const depth = (pc: number, t: number): number => {
    let d = 0;
    for (const x of targets) if (x > pc && x < t) d++;
    return d;
  };
  for (let pc = 0; pc < len; pc++) {
    if (targets.has(pc)) out.push(END);
    const { code, jt, jf, k } = p[pc]!;
    const op = code & 0xf0;
    switch (bpfClass(code)) {
      case 0x06:
        out.push(...(code === 0x06 ? i32c(k) : [LGET, RA]), RETURN);
        break;
      case 0x00: // LD
      case 0x01: {
        // LDX
        const dst = bpfClass(code) === 0 ? RA : RX;
        const mode = code & 0xe0;
        const size = (code & 0x18) === 0x10 ? 1 : (code & 0x18) === 0x08 ? 2 : 4;
        if (mode === 0x00) out.push(...i32c(k), LSET, dst);
        else if (mode === 0x80) out.push(LGET, WIRE, LSET, dst);
        else if (mode === 0x60) out.push(LGET, MEM0 + k, LSET, dst);
        else if (mode === 0x20)
          out.push(...returnZeroIf(outOfBounds(k, size, false)), ...loadBE(size, (i) => i32c(k + i)), LSET, RA);
        else if (mode === 0x40)
          out.push(
            ...returnZeroIf(outOfBounds(k, size, true)),
            ...loadBE(size, (i) => [LGET, RX, ...i32c(k + i), ADD]),
            LSET,
            RA,
          );
        else if (mode === 0xa0)
          out.push(
            ...returnZeroIf(outOfBounds(k, 1, false)),
            ...i32c(k),
            LOAD8U,
            0,
            0,
            ...i32c(15),
            AND,
            ...i32c(2),
            SHL,
            LSET,
            RX,
          );
        break;
      }
      case 0x02:
        out.push(LGET, RA, LSET, MEM0 + k);
        break;
      case 0x03:
        out.push(LGET, RX, LSET, MEM0 + k);
        break;
      case 0x07:
        out.push(...(code === 0x07 ? [LGET, RA, LSET, RX] : [LGET, RX, LSET, RA]));
        break;
      case 0x04: {
        if (op === 0x80) {
          out.push(...i32c(0), LGET, RA, SUB, LSET, RA);
          break;
        }
        const useX = (code & 0x08) !== 0;
        const rhs = useX ? [LGET, RX] : i32c(k);
        if (useX && (op === 0x30 || op === 0x90)) out.push(...returnZeroIf([LGET, RX, EQZ]));
        if (useX && (op === 0x60 || op === 0x70)) {
          // wasm masks shift counts by 31; libpcap gives 0 for counts >= 32.
          out.push(LGET, RA, LGET, RX, ALU[op]!, ...i32c(0), LGET, RX, ...i32c(32), LTU, SELECT, LSET, RA);
        } else out.push(LGET, RA, ...rhs, ALU[op]!, LSET, RA);
        break;
      }
      case 0x05: {
        if (op === 0x00) {
          if (k > 0) out.push(BR, ...u32leb(depth(pc, pc + 1 + k)));
          break;
        }
        const rhs = code & 0x08 ? [LGET, RX] : i32c(k);
        const cond = op === 0x40 ? [LGET, RA, ...rhs, AND] : [LGET, RA, ...rhs, CMP[op]!];
        const tT = pc + 1 + jt;
        const tF = pc + 1 + jf;
        if (jt > 0 && jf > 0) out.push(...cond, BR_IF, ...u32leb(depth(pc, tT)), BR, ...u32leb(depth(pc, tF)));
        else if (jt > 0) out.push(...cond, BR_IF, ...u32leb(depth(pc, tT)));
        else if (jf > 0) out.push(...cond, EQZ, BR_IF, ...u32leb(depth(pc, tF)));
        break;
      }
    }
  }
  out.push(END);
  return out;
}

function section(id: number, content: number[]): number[] {
  return [id, ...u32leb(content.length), ...content];
}

/** The WebAssembly module bytes for a verified program (exported for tests). */
export function programToWasm(p: Program): Uint8Array {
  const code = body(p);
  const locals = [1, ...u32leb(18), 0x7f]; // 18 more i32 locals: A, X, M[0..15]
  const func = [...locals, ...code];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]),
    ...section(2, [1, 3, ...[0x65, 0x6e, 0x76], 3, ...[0x6d, 0x65, 0x6d], 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, 1, 0x66, 0x00, 0]),
    ...section(10, [1, ...u32leb(func.length), ...func]),
  ];
  return Uint8Array.from(bytes);
}

const MAX_TARGETS = 512;

/** The slice of the WebAssembly JS API used here (the TypeScript lib in use declares no DOM globals). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer; grow(pages: number): number };
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Verifies a program and compiles it to WebAssembly. The returned filter copies each packet into the
 * module's memory (growing it when a packet is larger) and calls the function: no allocation per packet.
 * Programs with more than 512 jump targets get the JavaScript engine instead.
 * @throws {@link BpfError} EXO_ERR_BPF_VERIFY when the verifier rejects the program
 */
export function compileProgramWasm(p: Program): CompiledFilter {
  const v = verifyProgram(p);
  if (!v.ok)
    throw new BpfError(BpfErrorCode.VERIFY, `program rejected: ${v.message}`, { index: v.index, rule: v.rule });
  if (jumpTargets(p).size > MAX_TARGETS) return compileProgram(p);
  const module = new Wasm.Module(programToWasm(p));
  const memory = new Wasm.Memory({ initial: 2 });
  const instance = new Wasm.Instance(module, { env: { mem: memory } });
  const f = instance.exports.f as (len: number, wirelen: number) => number;
  let view = new Uint8Array(memory.buffer);
  return (pkt: Uint8Array, wirelen: number, buflen: number): number => {
    const len = Math.min(buflen >>> 0, pkt.length);
    if (pkt.length > view.length) {
      memory.grow(Math.ceil((pkt.length - view.length) / 65536));
      view = new Uint8Array(memory.buffer);
    }
    view.set(pkt);
    return f(len, wirelen | 0) >>> 0;
  };
}
