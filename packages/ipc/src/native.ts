import { createRequire } from 'node:module';
import { IpcError } from './errors.ts';

/** The functions of the native addon (native/exonet_ipc.c), built by `node-gyp rebuild` during `npm ci`. */
export interface NativeIpc {
  shmCreate(name: string, size: number): ArrayBuffer;
  shmOpen(name: string): ArrayBuffer;
  shmUnlink(name: string): boolean;
  unmap(buffer: ArrayBuffer): void;
  /** 0 woken, 1 not-equal, 2 timed out. */
  futexWait(buffer: ArrayBufferLike, byteOffset: number, expected: number, timeoutMs: number): number;
  futexWaitAsync(buffer: ArrayBufferLike, byteOffset: number, expected: number, timeoutMs: number): Promise<number>;
  futexWake(buffer: ArrayBufferLike, byteOffset: number): number;
  /** A pidfd for `pid` (Linux >= 5.3). */
  pidfdOpen(pid: number): number;
  /** 0 once the process exited, 2 on timeout, -errno on error; does not keep the event loop alive. */
  pidfdWaitAsync(fd: number, timeoutMs: number): Promise<number>;
  closeFd(fd: number): void;
  /** SO_PEERCRED of a connected Unix domain socket. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
}

let addon: NativeIpc | undefined;

/** Loads the addon on first use, so thread-only users never need it. */
export function native(): NativeIpc {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)('../build/Release/exonet_ipc.node') as NativeIpc;
    } catch (cause) {
      throw new IpcError(
        'EXO_ERR_IPC_NATIVE',
        'the addon packages/ipc/build/Release/exonet_ipc.node is missing or does not load: run `npm ci` (or `npm rebuild @exonet/ipc`)',
        { cause },
      );
    }
  }
  return addon;
}

/** Runs a native call, turning its errors into IpcError with the same stable code. */
export function callNative<T>(what: string, fn: (n: NativeIpc) => T): T {
  const n = native();
  try {
    return fn(n);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    const message = cause instanceof Error ? cause.message.replace(/^EXO_ERR_IPC_\w+: /, '') : String(cause);
    throw new IpcError(
      code === 'EXO_ERR_IPC_INVALID_ARGUMENT' ? 'EXO_ERR_IPC_INVALID_ARGUMENT' : 'EXO_ERR_IPC_NATIVE',
      `${what}: ${message}`,
      { cause },
    );
  }
}
