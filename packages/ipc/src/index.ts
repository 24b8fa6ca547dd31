/**
 * Lock-free SPSC rings, packet pools and channels in shared memory, between threads and processes.
 * @packageDocumentation
 */
export { spawnProcess, spawnWorker } from './spawn.ts';
