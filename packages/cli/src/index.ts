/**
 * The `exonet` command line.
 * @packageDocumentation
 */

export type { BenchmarkLoader, BenchmarkModule, BenchmarkOptions } from './bench.ts';
export { main } from './main.ts';
