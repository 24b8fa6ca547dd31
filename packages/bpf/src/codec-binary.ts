/**
 * The binary program form used in grants: 8 bytes an instruction, code u16 LE, jt u8, jf u8, k u32 LE.
 * @module
 */
import { BpfError, BpfErrorCode } from './errors.ts';
import { BPF_MAXINSNS, type Insn, insnFieldError, type Program } from './insn.ts';

/** Bytes per encoded instruction. */
export const INSN_BYTES = 8;

/**
 * Encodes a program in the grant binary form.
 * @throws {@link BpfError} EXO_ERR_BPF_INSN_FIELD when a field is out of range or not an integer
 */
export function encodeProgram(p: Program): Uint8Array {
  if (!Array.isArray(p)) throw new BpfError(BpfErrorCode.ARGUMENT, 'expected an array of instructions');
  const out = new Uint8Array(p.length * INSN_BYTES);
  const view = new DataView(out.buffer);
  for (let i = 0; i < p.length; i++) {
    const problem = insnFieldError(p[i]);
    if (problem) throw new BpfError(BpfErrorCode.INSN_FIELD, `instruction ${i}: ${problem}`, { index: i });
    const insn = p[i] as Insn;
    const at = i * INSN_BYTES;
    view.setUint16(at, insn.code, true);
    view.setUint8(at + 2, insn.jt);
    view.setUint8(at + 3, insn.jf);
    view.setUint32(at + 4, insn.k, true);
  }
  return out;
}

/**
 * Decodes the grant binary form. Any bit pattern decodes; whether it is a valid program is the
 * verifier's question.
 * @throws {@link BpfError} EXO_ERR_BPF_BINARY_LENGTH when the length is 0, not a multiple of 8, or over
 *   4096 instructions
 */
export function decodeProgram(bytes: Uint8Array): Program {
  if (!(bytes instanceof Uint8Array)) throw new BpfError(BpfErrorCode.ARGUMENT, 'expected a Uint8Array');
  if (bytes.length === 0 || bytes.length % INSN_BYTES !== 0) {
    throw new BpfError(
      BpfErrorCode.BINARY_LENGTH,
      `expected a non-zero multiple of ${INSN_BYTES} bytes, got length=${bytes.length}`,
    );
  }
  const count = bytes.length / INSN_BYTES;
  if (count > BPF_MAXINSNS) {
    throw new BpfError(BpfErrorCode.BINARY_LENGTH, `expected at most ${BPF_MAXINSNS} instructions, got ${count}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * INSN_BYTES;
    out[i] = {
      code: view.getUint16(at, true),
      jt: view.getUint8(at + 2),
      jf: view.getUint8(at + 3),
      k: view.getUint32(at + 4, true),
    };
  }
  return out;
}
