/** The BPF side of grant verification: the program claim through @exonet/bpf's decoder and verifier. */
import { decodeProgram, verifyProgram } from '@exonet/bpf';
import type { ProgramVerdict } from './grant.ts';

/**
 * The standard `verifyProgram` option of verifyGrant: decodes the 8-byte instructions and runs the kernel-grade
 * BPF verifier of @exonet/bpf. Never throws. Drivers with their own verifier pass that instead.
 */
export function bpfProgramVerifier(program: Uint8Array): ProgramVerdict {
  try {
    const verdict = verifyProgram(decodeProgram(program));
    return verdict.ok ? { ok: true } : { ok: false, message: verdict.message };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : 'undecodable program' };
  }
}
