import { interpret, type Program, verifyProgram } from '@exonet/bpf';
import type { FrameFilter } from './grant-table.ts';

/**
 * Turns a verified program into the function the packet path runs. Every filter the core runs goes through
 * here, so the engine (interpreter or compiled code) is chosen in one place.
 * @throws Error naming the verifier's rule when the program is rejected
 */
export function compileFilter(program: Program): FrameFilter {
  const verdict = verifyProgram(program);
  if (!verdict.ok) throw new Error(`instruction ${verdict.index}: ${verdict.message}`);
  return (pkt, wirelen, buflen) => interpret(program, pkt, wirelen, buflen);
}
