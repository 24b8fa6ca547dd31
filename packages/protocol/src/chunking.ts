/**
 * Control messages larger than one ring slot (a grant is a JWS of about a kilobyte; a 4096-instruction
 * program is 44 KiB) travel as a run of slots: every slot but the last has {@link MORE} set in its type.
 * Rings are FIFO and single-producer, so the chunks of one message are contiguous.
 */

/** Set in `type` of every chunk but the last. */
export const MORE = 0x8000_0000;

/** Largest message the reader accepts (a grant with a 4096-instruction program fits with room to spare). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** One slot as @exonet/ipc's control rings carry it. */
export interface Slot {
  readonly type: number;
  readonly id: number;
  readonly status: number;
  readonly payload: Uint8Array;
}

/** A whole message. */
export interface Message {
  readonly type: number;
  readonly id: number;
  readonly status: number;
  readonly payload: Uint8Array;
}

/**
 * Sends whole messages as chunks through a `send` that may refuse (ring full): what does not fit waits for
 * the next {@link pump}. Messages go out in order.
 */
export class ChunkWriter {
  readonly #send: (slot: Slot) => boolean;
  readonly #chunk: number;
  readonly #queue: Slot[] = [];

  /** @param chunkBytes payload bytes per slot (@exonet/ipc's CONTROL_PAYLOAD) */
  constructor(send: (slot: Slot) => boolean, chunkBytes: number) {
    if (!(chunkBytes > 0)) throw new RangeError('chunkBytes must be positive');
    this.#send = send;
    this.#chunk = chunkBytes;
  }

  /** Queues a message and sends what fits now. @returns true when everything queued has been sent */
  write(message: Message): boolean {
    if (message.payload.length > MAX_MESSAGE_BYTES) {
      throw new RangeError(`control message of ${message.payload.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    }
    const p = message.payload;
    const type = message.type & ~MORE;
    for (let at = 0; at < p.length || at === 0; at += this.#chunk) {
      const end = Math.min(p.length, at + this.#chunk);
      const last = end >= p.length;
      this.#queue.push({
        type: last ? type : (type | MORE) >>> 0,
        id: message.id,
        status: message.status,
        payload: p.subarray(at, end),
      });
      if (last) break;
    }
    return this.pump();
  }

  /** Sends queued chunks until the ring refuses one. @returns true when the queue is empty */
  pump(): boolean {
    while (this.#queue.length > 0) {
      if (!this.#send(this.#queue[0])) return false;
      this.#queue.shift();
    }
    return true;
  }

  /** Chunks waiting for room. */
  get pending(): number {
    return this.#queue.length;
  }
}

/** Why a chunk stream is broken (the peer is misbehaving). */
export type ChunkError = 'too-large' | 'interleaved';

/** Reassembles chunks into messages; never throws on hostile input. */
export class ChunkReader {
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #type = -1;
  #id = -1;

  /**
   * Adds one slot. @returns the whole message when this slot completes one, undefined when more chunks are
   * needed, or a {@link ChunkError} (the partial message is dropped).
   */
  push(slot: Slot): Message | undefined | ChunkError {
    const more = (slot.type & MORE) !== 0;
    const type = (slot.type & ~MORE) >>> 0;
    if (this.#type >= 0 && (type !== this.#type || slot.id !== this.#id)) {
      this.#reset();
      return 'interleaved';
    }
    if (!more && this.#parts.length === 0) return { type, id: slot.id, status: slot.status, payload: slot.payload };
    this.#bytes += slot.payload.length;
    if (this.#bytes > MAX_MESSAGE_BYTES) {
      this.#reset();
      return 'too-large';
    }
    this.#parts.push(slot.payload);
    this.#type = type;
    this.#id = slot.id;
    if (more) return undefined;
    const payload = new Uint8Array(this.#bytes);
    let at = 0;
    for (const part of this.#parts) {
      payload.set(part, at);
      at += part.length;
    }
    this.#reset();
    return { type, id: slot.id, status: slot.status, payload };
  }

  #reset(): void {
    this.#parts = [];
    this.#bytes = 0;
    this.#type = -1;
    this.#id = -1;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A message with a JSON body. */
export function jsonMessage(type: number, id: number, status: number, body: unknown): Message {
  return { type, id, status, payload: encoder.encode(JSON.stringify(body)) };
}

/** Parses a JSON payload; undefined when it is not valid UTF-8 JSON (hostile input never throws). */
export function parseJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(payload));
  } catch {
    return undefined;
  }
}
