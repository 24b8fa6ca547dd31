/**
 * Out-of-order segments held until the gap before them fills (RFC 9293 section 3.10.7.4, "seventh, process
 * the segment text": segments beyond RCV.NXT inside the window may be kept). Bounded in bytes.
 */
import { seqAdd, seqDiff, seqGt, seqLe } from './seq.ts';

interface Piece {
  seq: number;
  data: Uint8Array;
}

/** A sorted, non-overlapping set of byte ranges ahead of RCV.NXT. */
export class ReassemblyBuffer {
  #pieces: Piece[] = [];
  #bytes = 0;
  /** Sequence number of a FIN seen out of order, or -1. */
  finSeq = -1;

  constructor(readonly limitBytes: number) {}

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }
  /** Number of separate ranges held. */
  get count(): number {
    return this.#pieces.length;
  }

  /** Keeps a copy of `data` at `seq` (overlaps with held data are trimmed); returns false when over the limit. */
  insert(seq: number, data: Uint8Array): boolean {
    if (data.length === 0) return true;
    if (this.#bytes + data.length > this.limitBytes) return false;
    let start = seq;
    let bytes = data;
    const out: Piece[] = [];
    for (const p of this.#pieces) {
      const pEnd = seqAdd(p.seq, p.data.length);
      const end = seqAdd(start, bytes.length);
      if (bytes.length === 0 || seqLe(pEnd, start) || seqLe(end, p.seq)) {
        out.push(p);
        continue;
      }
      // Overlap: keep the held bytes, add only what lies before them; the rest continues past them.
      if (seqGt(p.seq, start)) {
        const head = bytes.subarray(0, seqDiff(p.seq, start));
        out.push({ seq: start, data: head.slice() });
        this.#bytes += head.length;
      }
      out.push(p);
      const skip = Math.max(0, seqDiff(pEnd, start));
      bytes = bytes.subarray(Math.min(skip, bytes.length));
      start = pEnd;
    }
    if (bytes.length > 0) {
      out.push({ seq: start, data: bytes.slice() });
      this.#bytes += bytes.length;
    }
    out.sort((a, b) => seqDiff(a.seq, b.seq));
    this.#pieces = out;
    return true;
  }

  /** Removes and returns the data that has become contiguous at `rcvNxt` (possibly overlapping before it). */
  take(rcvNxt: number): Uint8Array[] {
    const got: Uint8Array[] = [];
    let next = rcvNxt;
    while (this.#pieces.length > 0) {
      const p = this.#pieces[0]!;
      if (seqGt(p.seq, next)) break;
      this.#pieces.shift();
      this.#bytes -= p.data.length;
      const skip = seqDiff(next, p.seq);
      if (skip < p.data.length) {
        const d = p.data.subarray(skip);
        got.push(d);
        next = seqAdd(next, d.length);
      }
    }
    return got;
  }

  /** The held ranges as SACK-style blocks (left, right), lowest first. */
  blocks(): { left: number; right: number }[] {
    return this.#pieces.map((p) => ({ left: p.seq, right: seqAdd(p.seq, p.data.length) }));
  }

  clear(): void {
    this.#pieces = [];
    this.#bytes = 0;
    this.finSeq = -1;
  }
}
