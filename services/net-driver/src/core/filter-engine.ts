import { compileProgramShared, type Program, verifyProgram } from '@exonet/bpf';
import type { FrameFilter } from './grant-table.ts';

/**
 * Turns a verified program into the function the packet path runs. Every filter the core runs goes through
 * here, so the engine is chosen in one place.
 *
 * Why @exonet/bpf's shared-shape compiled engine: a driver holds thousands of filters that differ only in
 * constants (one port each). Compiled one function per filter (`compileProgram`), each is called a few times
 * per thousand packets: most never leave V8's bytecode tier and the call sites that run them go megamorphic,
 * so at scale that engine lost even to the (optimised, shared) interpreter, which the driver ran until now.
 * `compileProgramShared` compiles all filters of one shape (`udp dst port N` for every N) into one generated
 * function, each filter a closure over its own constants: the one function is hot and optimised once, and
 * a lone filter runs as fast as with `compileProgram` (`exonet bench bpf`, `shared_ns`).
 *
 * `exonet bench demux`, three runs on 2 shared cores at load average 15 (best batch, ns per packet including
 * the index lookup; all three engines in each run), at 1 / 1,000 / 10,000 tasks:
 * - shared-shape (this): 111 / 139-140 / 140; at 10,000 tasks 1.26-1.27x the cost at 1 task, and the linear
 *   scan (every filter in turn) 2,454-9,605x slower;
 * - interpreter: 151-152 / 221-223 / 224-226, i.e. 1.36x / 1.6x / 1.61x the shared-shape engine;
 * - one function per filter: 114-116 / 423-431 / 432-437, i.e. 1.03x / 3.0x / 3.1x.
 * The index itself costs about 100 ns of that (the linear scan of one filter takes 35 ns).
 * @throws Error naming the verifier's rule when the program is rejected
 */
export function compileFilter(program: Program): FrameFilter {
  // Verified here for the driver's error message (index and rule); compileProgramShared verifies again.
  const verdict = verifyProgram(program);
  if (!verdict.ok) throw new Error(`instruction ${verdict.index}: ${verdict.message}`);
  return compileProgramShared(program);
}
