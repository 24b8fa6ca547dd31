/**
 * The minimal frame I/O a stack needs. The driver channel of exonet implements it; so do the in-memory pair,
 * the fault injector and the UDP tunnel used in tests. Frames are whole Ethernet frames without FCS.
 */
import type { MacAddress } from '@exonet/wire';

/** A receiver of frames; called with one or more frames at a time. */
export type FrameHandler = (frames: readonly Uint8Array[]) => void;

/** Full-frame I/O. */
export interface FrameLink {
  /** The link's own Ethernet address (the stack sends from it and accepts unicast to it). */
  readonly mac: MacAddress;
  /** Largest Ethernet payload the link carries (1500 for standard Ethernet). */
  readonly mtu: number;
  /**
   * Queues one frame for transmission. Returns false when it was not accepted (queue full or closed): TCP
   * holds the segment back and retries on the next ACK or a millisecond later; UDP reports it to the sender.
   */
  send(frame: Uint8Array): boolean;
  /** Optional batch transmit; returns how many frames (from the front) were accepted. */
  sendBatch?(frames: readonly Uint8Array[]): number;
  /**
   * Registers the receiver of incoming frames (one at a time: a new handler replaces the old one). Returns a
   * function that unregisters it. The link may call the handler synchronously from `send` of a peer; the stack
   * copes with that re-entrancy. Frames passed to the handler may be reused by the link once it returns, so
   * the stack copies what it keeps.
   */
  onFrames(handler: FrameHandler): () => void;
  /** Releases the link's resources. */
  close?(): void;
}

/**
 * Adapts a link's callback into an async iterator of frames (for tasks that read raw frames). Buffers at most
 * `limit` frames; beyond that the oldest are dropped, as a NIC ring would.
 */
export async function* framesOf(link: FrameLink, limit = 1024): AsyncGenerator<Uint8Array, void, undefined> {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  const off = link.onFrames((frames) => {
    for (const f of frames) {
      if (queue.length >= limit) queue.shift();
      queue.push(f.slice());
    }
    wake?.();
  });
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = null;
    }
  } finally {
    off();
  }
}
