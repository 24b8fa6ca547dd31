/**
 * The error catalogue of @exonet/ipc: every failure at this package's boundary is an {@link IpcError} with one
 * of these stable codes, so callers branch on `err.code`, never on message text.
 */
export const IpcErrorCodes = {
  /** An argument is out of range or of the wrong shape (capacity not a power of two, region too small...). */
  EXO_ERR_IPC_INVALID_ARGUMENT: 'an argument is out of range or malformed',
  /** A shared region does not hold what its header claims (magic, version, sizes). */
  EXO_ERR_IPC_BAD_LAYOUT: 'the shared-memory layout is not the expected one',
  /** An index read from shared memory is impossible (the peer wrote garbage): the ring is unusable. */
  EXO_ERR_IPC_RING_CORRUPT: 'a ring index written by the peer is impossible',
  /** The trusted side tried to hand out a buffer it does not own (a bug on the trusted side). */
  EXO_ERR_IPC_NOT_OWNER: 'the buffer is not owned by the caller',
  /** The channel was closed or its task disconnected. */
  EXO_ERR_IPC_CLOSED: 'the channel is closed',
  /** The task broke the protocol too often and was disconnected. */
  EXO_ERR_IPC_DISCONNECTED: 'the task was disconnected for protocol violations',
  /** The native addon (POSIX shared memory, futex doorbell) could not be loaded or a system call failed. */
  EXO_ERR_IPC_NATIVE: 'the native shared-memory addon failed',
  /** A blocking wait ran out of time. */
  EXO_ERR_IPC_TIMEOUT: 'the wait timed out',
} as const;

/** A stable error code of this package. */
export type IpcErrorCode = keyof typeof IpcErrorCodes;

/** The one error type this package throws; `code` is stable, `message` names what was wrong. */
export class IpcError extends Error {
  readonly code: IpcErrorCode;
  constructor(code: IpcErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'IpcError';
    this.code = code;
  }
}

/** Throws EXO_ERR_IPC_INVALID_ARGUMENT unless `ok`; `what` says what was expected and what came. */
export function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new IpcError('EXO_ERR_IPC_INVALID_ARGUMENT', what);
}
