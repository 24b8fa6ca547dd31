/**
 * Thin layer over the etcd3 client's raw KV RPCs: every call gets a deadline (so a cluster without quorum
 * yields a clear {@link StoreUnavailableError} instead of a hang), values are JSON, and revisions are numbers.
 */
import type { Etcd3, IKeyValue, IRequestOp, IResponseOp, ITxnRequest } from 'etcd3';
import { StoreCorruptError, toStoreError } from './etcd-errors.ts';
import { prefixEnd } from './etcd-keys.ts';

/** A key-value pair as this store sees it. */
export interface Kv {
  readonly key: string;
  readonly value: Buffer;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

/** Options of a range read. */
export interface RangeOptions {
  /** Read every key starting with the key instead of the key alone. */
  readonly prefix?: boolean;
  /** Only keys created after this revision (`min_create_revision = after + 1`). */
  readonly createdAfter?: number;
  /** Sort by create revision. */
  readonly sortByCreate?: 'asc' | 'desc';
  readonly limit?: number;
  readonly keysOnly?: boolean;
}

/** Converts a raw etcd key-value. */
export function toKv(kv: IKeyValue): Kv {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value,
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
  };
}

/** Parses a JSON value, refusing anything that is not a JSON object. */
export function parseJson<T>(kv: Kv): T {
  let value: unknown;
  try {
    value = JSON.parse(kv.value.toString('utf8'));
  } catch {
    throw new StoreCorruptError(`etcd key ${kv.key} does not hold JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StoreCorruptError(`etcd key ${kv.key} does not hold a JSON object`);
  }
  return value as T;
}

/** A range request op for use inside a transaction. */
export function rangeOp(key: string, options: RangeOptions = {}): IRequestOp {
  const k = Buffer.from(key);
  return {
    request_range: {
      key: k,
      range_end: options.prefix ? prefixEnd(k) : undefined,
      min_create_revision: options.createdAfter !== undefined ? options.createdAfter + 1 : undefined,
      sort_target: options.sortByCreate ? 'Create' : undefined,
      sort_order: options.sortByCreate === 'asc' ? 'Ascend' : options.sortByCreate === 'desc' ? 'Descend' : undefined,
      limit: options.limit,
      keys_only: options.keysOnly,
    },
  };
}

/** A put op. */
export function putOp(key: string, value: unknown): IRequestOp {
  return {
    request_put: { key: Buffer.from(key), value: Buffer.from(value === '' ? '' : JSON.stringify(value)) },
  };
}

/** A delete op (one key, or every key with that prefix; `before`: only keys lexically below it). */
export function deleteOp(key: string, options: { prefix?: boolean; before?: string } = {}): IRequestOp {
  const k = Buffer.from(key);
  const rangeEnd =
    options.before !== undefined ? Buffer.from(options.before) : options.prefix ? prefixEnd(k) : undefined;
  return { request_delete_range: { key: k, range_end: rangeEnd } };
}

/** The key-values of a range response inside a transaction response. */
export function rangeKvs(op: IResponseOp | undefined): Kv[] {
  return (op?.response_range?.kvs ?? []).map(toKv);
}

/**
 * Per-attempt call options for the etcd3 client: every unary call gets its own deadline, evaluated again for
 * each retry on another member (a deadline object passed per call would already have expired by the
 * retry); streams (watches) get none.
 */
export function callDeadlines(attemptMs: number) {
  return (context: { isStream: boolean }) => (context.isStream ? {} : { deadline: new Date(Date.now() + attemptMs) });
}

/** KV calls with errors mapped to store errors (deadlines: see {@link callDeadlines}). */
export class EtcdKv {
  constructor(private readonly client: Etcd3) {}

  /** A linearizable range read; resolves with the kvs and the revision the read saw. */
  async range(key: string, what: string, options: RangeOptions = {}): Promise<{ kvs: Kv[]; revision: number }> {
    try {
      const op = rangeOp(key, options).request_range!;
      const res = await this.client.kv.range(op);
      return { kvs: res.kvs.map(toKv), revision: Number(res.header.revision) };
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  /** A transaction; resolves with success flag, responses and the revision it produced (or saw). */
  async txn(
    req: ITxnRequest,
    what: string,
  ): Promise<{ succeeded: boolean; responses: IResponseOp[]; revision: number }> {
    try {
      const res = await this.client.kv.txn(req);
      return { succeeded: res.succeeded, responses: res.responses, revision: Number(res.header.revision) };
    } catch (err) {
      throw toStoreError(err, what);
    }
  }
}
