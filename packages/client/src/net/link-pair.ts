/**
 * Two in-memory links joined back to back, for tests and for running two stacks in one process.
 */
import type { MacAddress } from '@exonet/wire';
import type { FrameHandler, FrameLink } from './frame-link.ts';

/** Options of {@link createLinkPair}. */
export interface LinkPairOptions {
  readonly macA?: MacAddress;
  readonly macB?: MacAddress;
  readonly mtu?: number;
}

class PairEnd implements FrameLink {
  peer!: PairEnd;
  handler: FrameHandler | null = null;
  readonly inbox: Uint8Array[] = [];
  scheduled = false;
  closed = false;
  /** Frames sent through this end. */
  sent = 0;

  constructor(
    readonly mac: MacAddress,
    readonly mtu: number,
  ) {}

  send(frame: Uint8Array): boolean {
    if (this.closed || this.peer.closed) return false;
    this.sent++;
    this.peer.inbox.push(frame.slice());
    this.peer.schedule();
    return true;
  }
  sendBatch(frames: readonly Uint8Array[]): number {
    let n = 0;
    for (const f of frames) if (this.send(f)) n++;
    return n;
  }
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Delivered from a microtask, never from inside the sender's call: a stack replying while it handles a
    // frame must not re-enter its peer.
    queueMicrotask(() => {
      this.scheduled = false;
      const frames = this.inbox.splice(0);
      if (frames.length > 0 && this.handler && !this.closed) this.handler(frames);
    });
  }
  onFrames(handler: FrameHandler): () => void {
    this.handler = handler;
    return () => {
      if (this.handler === handler) this.handler = null;
    };
  }
  close(): void {
    this.closed = true;
  }
}

/** Creates two links; a frame sent on one arrives (copied, from a microtask) at the other. */
export function createLinkPair(opts: LinkPairOptions = {}): { a: FrameLink; b: FrameLink } {
  const mtu = opts.mtu ?? 1500;
  const a = new PairEnd(opts.macA ?? Uint8Array.of(2, 0, 0, 0, 0, 0xa), mtu);
  const b = new PairEnd(opts.macB ?? Uint8Array.of(2, 0, 0, 0, 0, 0xb), mtu);
  a.peer = b;
  b.peer = a;
  return { a, b };
}
