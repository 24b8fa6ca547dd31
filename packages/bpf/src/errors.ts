/**
 * The package's error catalogue: every failure a caller can see is a {@link BpfError} with a stable code.
 * @module
 */

/** Stable error codes (`EXO_ERR_BPF_<WHAT>`); documented in docs/bpf.md. */
export const BpfErrorCode = {
  /** A binary program whose length is not a positive multiple of 8 bytes, or too long. */
  BINARY_LENGTH: 'EXO_ERR_BPF_BINARY_LENGTH',
  /** An instruction field outside its range (code u16, jt/jf u8, k u32) or not an integer. */
  INSN_FIELD: 'EXO_ERR_BPF_INSN_FIELD',
  /** Program text (tcpdump -d/-dd/-ddd or Linux comma form) that does not parse. */
  TEXT_SYNTAX: 'EXO_ERR_BPF_TEXT_SYNTAX',
  /** An unknown output format name. */
  FORMAT: 'EXO_ERR_BPF_FORMAT',
  /** A program the verifier rejects where a verified one is required (compileProgram, conjoin). */
  VERIFY: 'EXO_ERR_BPF_VERIFY',
  /** A pcap-filter expression that does not parse. */
  EXPR_SYNTAX: 'EXO_ERR_BPF_EXPR_SYNTAX',
  /** A pcap-filter expression that parses but means nothing (e.g. `tcp host x`, a bad address). */
  EXPR_SEMANTIC: 'EXO_ERR_BPF_EXPR_SEMANTIC',
  /** A result that would exceed the 4096-instruction limit or a jump that cannot be encoded. */
  TOO_LONG: 'EXO_ERR_BPF_TOO_LONG',
  /** A bad argument to a public function (wrong type, negative length...). */
  ARGUMENT: 'EXO_ERR_BPF_ARGUMENT',
} as const;

export type BpfErrorCode = (typeof BpfErrorCode)[keyof typeof BpfErrorCode];

/** Extra, machine-readable detail carried by some errors. */
export interface BpfErrorDetail {
  /** 1-based line of program text (TEXT_SYNTAX). */
  readonly line?: number;
  /** 0-based character offset in an expression (EXPR_SYNTAX, EXPR_SEMANTIC). */
  readonly position?: number;
  /** What the parser expected at `position` (EXPR_SYNTAX). */
  readonly expected?: readonly string[];
  /** Index of the offending instruction (VERIFY). */
  readonly index?: number;
  /** Verifier rule broken (VERIFY). */
  readonly rule?: string;
}

/** The one error type this package throws. */
export class BpfError extends Error {
  readonly code: BpfErrorCode;
  readonly detail: BpfErrorDetail;

  constructor(code: BpfErrorCode, message: string, detail: BpfErrorDetail = {}) {
    super(message);
    this.name = 'BpfError';
    this.code = code;
    this.detail = detail;
  }
}
