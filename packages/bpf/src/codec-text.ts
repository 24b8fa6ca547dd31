/**
 * Text forms of programs: tcpdump's -d (bpf_image), -dd (C array), -ddd (decimal), and the Linux comma
 * form used by bpf_asm and xt_bpf. Printing matches libpcap 1.10's bpf_dump byte for byte.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import { type Insn, insnFieldError, type Program } from './insn.ts';

/** Output formats: `d`, `dd`, `ddd` as tcpdump's -d/-dd/-ddd; `linux` is `count,c jt jf k,...`. */
export type ProgramFormat = 'd' | 'dd' | 'ddd' | 'linux';

/**
 * Prints a program the way `tcpdump -d`, `-dd`, `-ddd` would (one instruction a line, each line ending
 * in a newline), or in the Linux comma form (one line, no trailing newline).
 * @throws {@link BpfError} EXO_ERR_BPF_FORMAT for an unknown format, EXO_ERR_BPF_INSN_FIELD for bad fields
 */
export function formatProgram(p: Program, format: ProgramFormat = 'd'): string {
  if (!Array.isArray(p)) throw new BpfError(BpfErrorCode.ARGUMENT, 'expected an array of instructions');
  p.forEach((insn, i) => {
    const problem = insnFieldError(insn);
    if (problem) throw new BpfError(BpfErrorCode.INSN_FIELD, `instruction ${i}: ${problem}`, { index: i });
  });
  switch (format) {
    case 'd':
      return p.map((insn, i) => `${imageOf(insn, i)}\n`).join('');
    case 'dd':
      return p
        .map((x) => `{ 0x${x.code.toString(16)}, ${x.jt}, ${x.jf}, 0x${x.k.toString(16).padStart(8, '0')} },\n`)
        .join('');
    case 'ddd':
      return `${p.length}\n${p.map((x) => `${x.code} ${x.jt} ${x.jf} ${x.k}\n`).join('')}`;
    case 'linux':
      return [String(p.length), ...p.map((x) => `${x.code} ${x.jt} ${x.jf} ${x.k}`)].join(',');
    default:
      throw new BpfError(BpfErrorCode.FORMAT, `unknown format "${String(format)}"; expected d, dd, ddd or linux`);
  }
}

/** C's "%d" of a u32. */
const sd = (k: number): string => String(k | 0);
const hex = (k: number): string => `0x${k.toString(16)}`;

/** Mnemonic and operand printer per exact opcode, as libpcap's bpf_image (anything else is "unimp"). */
const IMAGE: ReadonlyMap<number, readonly [string, (k: number, n: number) => string]> = new Map([
  [0x06, ['ret', (k) => `#${sd(k)}`]],
  [0x16, ['ret', () => '']],
  [0x20, ['ld', (k) => `[${sd(k)}]`]],
  [0x28, ['ldh', (k) => `[${sd(k)}]`]],
  [0x30, ['ldb', (k) => `[${sd(k)}]`]],
  [0x80, ['ld', () => '#pktlen']],
  [0x40, ['ld', (k) => `[x + ${sd(k)}]`]],
  [0x48, ['ldh', (k) => `[x + ${sd(k)}]`]],
  [0x50, ['ldb', (k) => `[x + ${sd(k)}]`]],
  [0x00, ['ld', (k) => `#${hex(k)}`]],
  [0x01, ['ldx', (k) => `#${hex(k)}`]],
  [0xb1, ['ldxb', (k) => `4*([${sd(k)}]&0xf)`]],
  [0x60, ['ld', (k) => `M[${sd(k)}]`]],
  [0x61, ['ldx', (k) => `M[${sd(k)}]`]],
  [0x02, ['st', (k) => `M[${sd(k)}]`]],
  [0x03, ['stx', (k) => `M[${sd(k)}]`]],
  [0x05, ['ja', (k, n) => sd(n + 1 + k)]],
  [0x15, ['jeq', (k) => `#${hex(k)}`]],
  [0x25, ['jgt', (k) => `#${hex(k)}`]],
  [0x35, ['jge', (k) => `#${hex(k)}`]],
  [0x45, ['jset', (k) => `#${hex(k)}`]],
  [0x1d, ['jeq', () => 'x']],
  [0x2d, ['jgt', () => 'x']],
  [0x3d, ['jge', () => 'x']],
  [0x4d, ['jset', () => 'x']],
  [0x04, ['add', (k) => `#${sd(k)}`]],
  [0x14, ['sub', (k) => `#${sd(k)}`]],
  [0x24, ['mul', (k) => `#${sd(k)}`]],
  [0x34, ['div', (k) => `#${sd(k)}`]],
  [0x94, ['mod', (k) => `#${sd(k)}`]],
  [0x54, ['and', (k) => `#${hex(k)}`]],
  [0x44, ['or', (k) => `#${hex(k)}`]],
  [0xa4, ['xor', (k) => `#${hex(k)}`]],
  [0x64, ['lsh', (k) => `#${sd(k)}`]],
  [0x74, ['rsh', (k) => `#${sd(k)}`]],
  [0x0c, ['add', () => 'x']],
  [0x1c, ['sub', () => 'x']],
  [0x2c, ['mul', () => 'x']],
  [0x3c, ['div', () => 'x']],
  [0x9c, ['mod', () => 'x']],
  [0x5c, ['and', () => 'x']],
  [0x4c, ['or', () => 'x']],
  [0xac, ['xor', () => 'x']],
  [0x6c, ['lsh', () => 'x']],
  [0x7c, ['rsh', () => 'x']],
  [0x84, ['neg', () => '']],
  [0x07, ['tax', () => '']],
  [0x87, ['txa', () => '']],
]);

/** One line of `tcpdump -d`: libpcap's bpf_image(insn, n). */
export function imageOf(insn: Insn, n: number): string {
  const entry = IMAGE.get(insn.code);
  const op = entry ? entry[0] : 'unimp';
  const operand = entry ? entry[1](insn.k, n) : hex(insn.code);
  const head = `(${String(n).padStart(3, '0')}) ${op.padEnd(8)} `;
  // bpf_image prints jt/jf for every JMP-class code except JA, known or not.
  if ((insn.code & 0x07) === 0x05 && (insn.code & 0xf0) !== 0x00) {
    return `${head}${operand.padEnd(16)} jt ${n + 1 + insn.jt}\tjf ${n + 1 + insn.jf}`;
  }
  return `${head}${operand}`;
}

function syntax(line: number, message: string): BpfError {
  return new BpfError(BpfErrorCode.TEXT_SYNTAX, `line ${line}: ${message}`, { line });
}

const NUM = /^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/;
const SNUM = /^-?(?:0[xX][0-9a-fA-F]+|[0-9]+)$/;

/** Parses an unsigned number field with a range; accepts decimal and 0x hex. */
function field(text: string, max: number, line: number, what: string): number {
  const t = text.trim();
  if (!NUM.test(t)) throw syntax(line, `expected ${what} as a number, got "${t.slice(0, 40)}"`);
  const v = Number(t);
  if (!Number.isSafeInteger(v) || v > max) throw syntax(line, `${what} ${t} is out of range 0..${max}`);
  return v;
}

/** Parses a signed 32-bit operand as bpf_image prints it (%d), or unsigned/hex; returns it as u32. */
function operand(text: string, line: number, what: string): number {
  const t = text.trim();
  if (!SNUM.test(t)) throw syntax(line, `expected ${what} as a number, got "${t.slice(0, 40)}"`);
  const neg = t.startsWith('-');
  const v = Number(neg ? t.slice(1) : t);
  if (!Number.isSafeInteger(v) || (neg ? v > 0x80000000 : v > 0xffffffff)) {
    throw syntax(line, `${what} ${t} does not fit in 32 bits`);
  }
  return (neg ? -v : v) >>> 0;
}

const MAX_TEXT = 4 * 1024 * 1024;

/**
 * Parses program text in any of the forms {@link formatProgram} prints: tcpdump -ddd (a count line, then
 * `code jt jf k` lines), -dd (`{ 0x28, 0, 0, 0x0000000c },` lines), -d (`(000) ldh [12]` lines; an
 * `unimp` line keeps only its opcode) and the Linux comma form (`4,40 0 0 12,21 0 1 2054,...`). Blank
 * lines and `#` comment lines are ignored. The result is a program to verify, not a verified one.
 * @throws {@link BpfError} EXO_ERR_BPF_TEXT_SYNTAX naming the 1-based line
 */
export function parseProgramText(text: string): Program {
  if (typeof text !== 'string') throw new BpfError(BpfErrorCode.ARGUMENT, 'expected program text as a string');
  if (text.length > MAX_TEXT) throw syntax(1, `program text longer than ${MAX_TEXT} characters`);
  const lines = text
    .split(/\r?\n/)
    .map((t, i) => ({ t: t.trim(), n: i + 1 }))
    .filter((l) => l.t !== '' && !l.t.startsWith('#'));
  if (lines.length === 0) throw syntax(1, 'empty program text');
  const first = lines[0]!;
  if (first.t.startsWith('{')) return lines.map((l) => parseDdLine(l.t, l.n));
  if (first.t.startsWith('(')) return lines.map((l, i) => parseImageLine(l.t, l.n, i));
  if (lines.length === 1 && first.t.includes(',')) return parseLinux(first.t, first.n);
  return parseDdd(lines);
}

function parseDdLine(t: string, n: number): Insn {
  const m = /^\{\s*([^,]+),\s*([^,]+),\s*([^,]+),\s*([^,}]+?)\s*\}\s*,?$/.exec(t);
  if (!m) throw syntax(n, `expected "{ code, jt, jf, k },", got "${t.slice(0, 60)}"`);
  return {
    code: field(m[1]!, 0xffff, n, 'code'),
    jt: field(m[2]!, 0xff, n, 'jt'),
    jf: field(m[3]!, 0xff, n, 'jf'),
    k: field(m[4]!, 0xffffffff, n, 'k'),
  };
}

function parseQuad(t: string, n: number): Insn {
  const parts = t.split(/\s+/);
  if (parts.length !== 4) throw syntax(n, `expected "code jt jf k", got "${t.slice(0, 60)}"`);
  return {
    code: field(parts[0]!, 0xffff, n, 'code'),
    jt: field(parts[1]!, 0xff, n, 'jt'),
    jf: field(parts[2]!, 0xff, n, 'jf'),
    k: field(parts[3]!, 0xffffffff, n, 'k'),
  };
}

function parseDdd(lines: readonly { t: string; n: number }[]): Program {
  const first = lines[0]!;
  let body = lines;
  if (/^\S+$/.test(first.t)) {
    const count = field(first.t, 0xffffffff, first.n, 'instruction count');
    body = lines.slice(1);
    if (count !== body.length) {
      throw syntax(first.n, `instruction count ${count} does not match the ${body.length} instruction lines`);
    }
  }
  return body.map((l) => parseQuad(l.t, l.n));
}

function parseLinux(t: string, n: number): Program {
  const parts = t.split(',').map((s) => s.trim());
  if (parts[parts.length - 1] === '') parts.pop();
  const count = field(parts[0]!, 0xffffffff, n, 'instruction count');
  const body = parts.slice(1);
  if (count !== body.length) {
    throw syntax(n, `instruction count ${count} does not match the ${body.length} comma-separated instructions`);
  }
  return body.map((q) => parseQuad(q, n));
}

const IMAGE_LINE = /^\((\d+)\)\s+(\S+)\s*(.*?)\s*$/;
const JUMP_TAIL = /^(.*?)\s+jt\s+(\d+)\s+jf\s+(\d+)$/;

/** Opcodes by mnemonic and operand shape, the inverse of bpf_image. */
function parseImageLine(t: string, n: number, index: number): Insn {
  const m = IMAGE_LINE.exec(t);
  if (!m) throw syntax(n, `expected "(NNN) op operand", got "${t.slice(0, 60)}"`);
  if (Number(m[1]) !== index) throw syntax(n, `instruction number (${m[1]}) should be ${index}`);
  const op = m[2]!;
  let rest = m[3]!;
  let jt = 0;
  let jf = 0;
  const jm = JUMP_TAIL.exec(rest);
  if (jm) {
    rest = jm[1]!.trim();
    const tt = Number(jm[2]);
    const ft = Number(jm[3]);
    if (tt <= index || ft <= index || tt - index - 1 > 0xff || ft - index - 1 > 0xff) {
      throw syntax(n, `jump targets jt ${tt} jf ${ft} are not reachable forward from ${index}`);
    }
    jt = tt - index - 1;
    jf = ft - index - 1;
  }
  const mk = (code: number, k = 0): Insn => ({ code, jt, jf, k });
  const bracket = /^\[(-?\w+)\]$/.exec(rest);
  const indexed = /^\[x\s*\+\s*(-?\w+)\]$/.exec(rest);
  const mem = /^M\[(\w+)\]$/.exec(rest);
  const imm = /^#(-?\w+)$/.exec(rest);
  const loads: Record<string, number> = { ld: 0x20, ldh: 0x28, ldb: 0x30 };
  if (op in loads) {
    const base = loads[op]!;
    if (bracket) return mk(base, operand(bracket[1]!, n, 'offset'));
    if (indexed) return mk(base + 0x20, operand(indexed[1]!, n, 'offset'));
  }
  const alu: Record<string, number> = {
    add: 0x00,
    sub: 0x10,
    mul: 0x20,
    div: 0x30,
    or: 0x40,
    and: 0x50,
    lsh: 0x60,
    rsh: 0x70,
    mod: 0x90,
    xor: 0xa0,
  };
  const jumps: Record<string, number> = { jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40 };
  switch (op) {
    case 'ld':
    case 'ldx': {
      const x = op === 'ldx' ? 1 : 0;
      if (rest === '#pktlen' || rest === '#len') return mk(0x80 | x);
      if (imm) return mk(0x00 | x, operand(imm[1]!, n, 'immediate'));
      if (mem) return mk(0x60 | x, operand(mem[1]!, n, 'scratch index'));
      break;
    }
    case 'ldxb': {
      const msh = /^4\s*\*\s*\(\[(-?\w+)\]\s*&\s*0xf\)$/.exec(rest);
      if (msh) return mk(0xb1, operand(msh[1]!, n, 'offset'));
      break;
    }
    case 'st':
    case 'stx':
      if (mem) return mk(op === 'st' ? 0x02 : 0x03, operand(mem[1]!, n, 'scratch index'));
      break;
    case 'ret':
      if (rest === '' || rest.toLowerCase() === 'a') return mk(0x16);
      if (imm) return mk(0x06, operand(imm[1]!, n, 'return value'));
      break;
    case 'ja': {
      const target = operand(rest, n, 'jump target') | 0;
      const k = target - index - 1;
      if (k < 0) throw syntax(n, `ja target ${target} is not forward of ${index}`);
      return mk(0x05, k);
    }
    case 'neg':
      if (rest === '') return mk(0x84);
      break;
    case 'tax':
      if (rest === '') return mk(0x07);
      break;
    case 'txa':
      if (rest === '') return mk(0x87);
      break;
    case 'unimp':
      return mk(operand(rest, n, 'opcode') & 0xffff);
    default:
      if (op in alu) {
        if (rest === 'x') return mk(0x0c | alu[op]!);
        if (imm) return mk(0x04 | alu[op]!, operand(imm[1]!, n, 'immediate'));
      } else if (op in jumps) {
        if (!jm) throw syntax(n, `conditional jump "${op}" needs "jt N jf M"`);
        if (rest === 'x') return mk(0x0d | jumps[op]!);
        if (imm) return mk(0x05 | jumps[op]!, operand(imm[1]!, n, 'comparand'));
      } else {
        throw syntax(n, `unknown mnemonic "${op.slice(0, 20)}"`);
      }
  }
  throw syntax(n, `operand "${rest.slice(0, 40)}" does not fit "${op}"`);
}
