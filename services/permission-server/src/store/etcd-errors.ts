/**
 * Typed errors of the etcd store. The HTTP layer maps {@link StoreUnavailableError} to 503, so a replica
 * whose etcd cluster has lost quorum refuses writes (and linearizable reads) clearly instead of hanging or
 * answering from stale state.
 */
import { ServerError } from '../errors.ts';

/**
 * etcd is unreachable, has no quorum, or did not answer within the call deadline. A {@link ServerError} with
 * code EXO_ERR_STORE_UNAVAILABLE, so the HTTP layer answers 503 with that code.
 */
export class StoreUnavailableError extends ServerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EXO_ERR_STORE_UNAVAILABLE', message);
    this.name = 'StoreUnavailableError';
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause });
  }
}

/** A value read from etcd is not what this store wrote (hand-edited, or another program's key). */
export class StoreCorruptError extends Error {
  readonly code = 'EXO_ERR_STORE_CORRUPT';
  readonly statusCode = 500;
  constructor(message: string) {
    super(message);
    this.name = 'StoreCorruptError';
  }
}

/** A store method was used wrongly (closed store, unknown key id, ...). */
export class StoreUsageError extends Error {
  readonly code = 'EXO_ERR_STORE_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'StoreUsageError';
  }
}

/** A compare-and-set loop gave up after too many concurrent modifications. */
export class StoreContentionError extends StoreUnavailableError {
  constructor(what: string, attempts: number) {
    super(`etcd store: ${what} still contended after ${attempts} attempts; retry later`);
    this.name = 'StoreContentionError';
  }
}

/**
 * Maps anything the etcd3 client throws to a store error. Every transport failure (gRPC unavailable,
 * deadline exceeded, broken circuit, "no leader", request timed out) becomes {@link StoreUnavailableError};
 * store errors pass through unchanged.
 */
export function toStoreError(err: unknown, what: string): Error {
  if (err instanceof StoreUnavailableError || err instanceof StoreCorruptError || err instanceof StoreUsageError) {
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`etcd store unavailable during ${what}: ${message}`, { cause: err });
}
