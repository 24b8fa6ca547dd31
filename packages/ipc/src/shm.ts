import { randomBytes } from 'node:crypto';
import type { Doorbell, WaitResult } from './doorbell.ts';
import { check } from './errors.ts';
import { callNative, native } from './native.ts';

const RESULTS: readonly WaitResult[] = ['ok', 'not-equal', 'timed-out'];

/**
 * A POSIX shared memory segment mapped into this process (shm_open + mmap through the native addon). To V8
 * its memory is an ordinary, non-shared ArrayBuffer: Atomics.load/store work on it, Atomics.wait does not,
 * so rings over it use {@link futexDoorbell}.
 */
export class SharedMemory {
  private constructor(
    /** The segment's name, "/..." as shm_open(3) wants it: what a task process is given to attach. */
    readonly name: string,
    /** The mapping. Becomes detached (length 0) after {@link close}. */
    readonly buffer: ArrayBuffer,
  ) {}

  /** Creates a new segment of `size` bytes, zero-filled; fails if `name` exists. */
  static create(size: number, name: string = SharedMemory.uniqueName()): SharedMemory {
    check(/^\/[A-Za-z0-9._-]{1,200}$/.test(name), `name: expected "/" and up to 200 of [A-Za-z0-9._-], got "${name}"`);
    return new SharedMemory(
      name,
      callNative(`create ${name}`, (n) => n.shmCreate(name, size)),
    );
  }

  /** Maps an existing segment. */
  static open(name: string): SharedMemory {
    check(/^\/[A-Za-z0-9._-]{1,200}$/.test(name), `name: expected "/" and up to 200 of [A-Za-z0-9._-], got "${name}"`);
    return new SharedMemory(
      name,
      callNative(`open ${name}`, (n) => n.shmOpen(name)),
    );
  }

  /** Removes a segment's name (existing mappings stay valid); false if there was none. */
  static unlink(name: string): boolean {
    return callNative(`unlink ${name}`, (n) => n.shmUnlink(name));
  }

  /** A fresh name that no other segment of this machine uses. */
  static uniqueName(): string {
    return `/exonet-${process.pid}-${randomBytes(6).toString('hex')}`;
  }

  /** True while mapped. */
  get mapped(): boolean {
    return this.buffer.byteLength > 0;
  }

  /** Unmaps the segment; every view over it becomes empty instead of pointing at unmapped memory. Idempotent. */
  close(): void {
    if (this.mapped) callNative(`unmap ${this.name}`, (n) => n.unmap(this.buffer));
  }
}

/**
 * The doorbell between processes: futex(2) on the ring's 32-bit flag word in the shared mapping, with the
 * contract of Atomics.wait/notify. The async wait blocks a thread of the addon, never the event loop.
 */
export const futexDoorbell: Doorbell = {
  wait(words, index, expected, timeoutMs) {
    return RESULTS[native().futexWait(words.buffer, words.byteOffset + index * 4, expected, timeoutMs)];
  },
  async waitAsync(words, index, expected, timeoutMs) {
    return RESULTS[await native().futexWaitAsync(words.buffer, words.byteOffset + index * 4, expected, timeoutMs)];
  },
  notify(words, index) {
    native().futexWake(words.buffer, words.byteOffset + index * 4);
  },
};
