/**
 * Classic BPF: codecs, verifier, interpreter, compiler, pcap-filter language, analysis.
 *
 * Everything a caller needs is exported here; modules not re-exported are internal.
 * @packageDocumentation
 */

export { type Atom, type AtomLocation, atomHolds, type FilterSummary, summarize, summaryAdmits } from './analysis.ts';
export { type CapturedPacket, type CaptureFile, readCaptureFile, writeCaptureFile } from './capture-file.ts';
export { decodeProgram, encodeProgram, INSN_BYTES } from './codec-binary.ts';
export { formatProgram, type ProgramFormat, parseProgramText } from './codec-text.ts';
export {
  type CompileExpressionOptions,
  compileExpression,
  DEFAULT_SNAPLEN,
  KNOWN_LINKTYPES,
  type LinkLayer,
  linkLayerOf,
} from './compile-expression.ts';
export { type CompiledFilter, compileProgram, compileProgramShared } from './compiler-js.ts';
export { compileProgramWasm } from './compiler-wasm.ts';
export { conjoin } from './conjoin.ts';
export { BpfError, BpfErrorCode, type BpfErrorDetail } from './errors.ts';
export { BPF_MAXINSNS, BPF_MEMWORDS, type Insn, type Program } from './insn.ts';
export { interpret } from './interpreter.ts';
export { type VerifyResult, type VerifyRule, verifyProgram } from './verifier.ts';
