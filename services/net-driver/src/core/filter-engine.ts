import { interpret, type Program, verifyProgram } from '@exonet/bpf';
import type { FrameFilter } from './grant-table.ts';

/**
 * Turns a verified program into the function the packet path runs. Every filter the core runs goes through
 * here, so the engine is chosen in one place.
 *
 * Why the interpreter and not @exonet/bpf's compiled engine: a driver holds thousands of filters that differ
 * only in constants (one port each). Compiled, each is its own generated function, called a few times per
 * thousand packets: most never leave V8's bytecode tier, and the call sites that run them go megamorphic.
 * `exonet bench demux` measured the compiled engine 5-10x slower than the (optimised, shared) interpreter at
 * 1,000 to 10,000 filters. Compiling filters that share a shape into one function with their constants
 * pooled would get both; until then the interpreter is the faster choice at scale.
 * @throws Error naming the verifier's rule when the program is rejected
 */
export function compileFilter(program: Program): FrameFilter {
  const verdict = verifyProgram(program);
  if (!verdict.ok) throw new Error(`instruction ${verdict.index}: ${verdict.message}`);
  return (pkt, wirelen, buflen) => interpret(program, pkt, wirelen, buflen);
}
