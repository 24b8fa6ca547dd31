/**
 * The SQLite store's writer thread: owns the writing connection and runs each batch of writes as one
 * transaction, so the commit's fsync (synchronous=FULL) blocks this thread instead of the server's event
 * loop. A batch's results are posted back only after its commit returned, i.e. once it is durable.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { commitBatch, openDatabase, type WriteOp, type WriteResult, writerFor } from './sqlite-ops.ts';

/** Messages to the writer thread: a batch is the JSON text of its WriteOp[] (see SqliteStore#flush). */
export type ToWriter = { readonly id: number; readonly batch: string } | { readonly close: true };

/** Messages from the writer thread. */
export type FromWriter =
  | { readonly ready: true }
  | { readonly ready: false; readonly message: string }
  | { readonly id: number; readonly results: WriteResult[] }
  | { readonly id: number; readonly failed: { name: string; message: string; code?: string } }
  | { readonly closed: true };

const port = parentPort!;
const send = (m: FromWriter) => port.postMessage(m);
const { path, results } = workerData as { path: string; results: MessagePort };
/** Batch outcomes go on their own port, which the server may also read synchronously between requests. */
const sendResult = (m: FromWriter) => results.postMessage(m);

let writer: ReturnType<typeof writerFor> | undefined;
try {
  writer = writerFor(openDatabase(path));
  send({ ready: true });
} catch (err) {
  send({ ready: false, message: err instanceof Error ? err.message : String(err) });
}

port.on('message', (m: ToWriter) => {
  if ('close' in m) {
    writer?.db.close();
    writer = undefined;
    send({ closed: true });
    results.close();
    port.close();
    return;
  }
  if (!writer) {
    sendResult({ id: m.id, failed: { name: 'Error', message: 'EXO_ERR_STORE_CLOSED: the store is not open' } });
    return;
  }
  try {
    const results = commitBatch(writer, JSON.parse(m.batch) as WriteOp[]);
    sendResult({ id: m.id, results });
  } catch (err) {
    const e = err as { name?: string; message?: string; code?: string };
    sendResult({
      id: m.id,
      failed: {
        name: e?.name ?? 'Error',
        message: e?.message ?? String(err),
        ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      },
    });
  }
});
