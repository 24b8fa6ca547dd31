/**
 * Server-sent events to clients that may not read: what a stream queues in memory is bounded, and a client
 * that falls that far behind is cut off (it reconnects with Last-Event-ID and is brought up to date from the
 * store, so it loses nothing but the connection).
 */
import type { Writable } from 'node:stream';

/** Bytes a stream may have queued (beyond the socket's own buffers) before the client is cut off. */
export const DEFAULT_SSE_MAX_QUEUED_BYTES = 1024 * 1024;

/** Streams served at once by default; more are refused with 503. */
export const DEFAULT_SSE_MAX_STREAMS = 1024;

/**
 * Writes events to `out` while its queue stays under `maxQueued` bytes; past that, calls `overflow` once and
 * writes nothing more. @returns a sender: false when the event was not written (the stream is over)
 */
export function boundedEventSender(
  out: Pick<Writable, 'write' | 'writableLength'>,
  maxQueued: number,
  overflow: () => void,
): (text: string) => boolean {
  let over = false;
  return (text) => {
    if (over) return false;
    if (out.writableLength + text.length > maxQueued) {
      over = true;
      overflow();
      return false;
    }
    out.write(text);
    return true;
  };
}
