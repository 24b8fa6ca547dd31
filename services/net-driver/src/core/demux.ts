import type { FrameFilter, InstalledGrant } from './grant-table.ts';

/**
 * What a demultiplexer calls for each candidate: the grant, with its task and its filter as separate
 * arguments (an index may keep these next to its own entries, so that a visitor using only them does not
 * reach into the grant object, one cache line less per frame with thousands of grants).
 */
export type CandidateVisitor = (grant: InstalledGrant, task: number, filter: FrameFilter) => void;

/**
 * Finds the receive grants that may accept a frame. The RX path runs the full filter of every candidate, so a
 * demultiplexer may return too many candidates, never too few.
 */
export interface Demux {
  add(grant: InstalledGrant): void;
  remove(grant: InstalledGrant): void;
  /** Number of grants held. */
  readonly size: number;
  /**
   * Calls `visit` for every grant that may accept `frame[0, length)`. `visit` must not add or remove grants.
   * Allocates nothing.
   */
  candidates(frame: Uint8Array, length: number, visit: CandidateVisitor): void;
}

/**
 * Every grant is a candidate for every frame: what Linux AF_PACKET does (each socket's filter runs on each
 * packet). The baseline the indexed demultiplexer is measured against, and the fallback for filters the
 * analysis cannot index.
 */
export class LinearDemux implements Demux {
  #grants: InstalledGrant[] = [];

  get size(): number {
    return this.#grants.length;
  }

  add(grant: InstalledGrant): void {
    this.#grants.push(grant);
  }

  remove(grant: InstalledGrant): void {
    // A fresh array, so a removal during delivery (a listener reacting to an event) cannot skip a grant.
    this.#grants = this.#grants.filter((g) => g !== grant);
  }

  candidates(_frame: Uint8Array, _length: number, visit: CandidateVisitor): void {
    const grants = this.#grants;
    for (let i = 0; i < grants.length; i++) visit(grants[i], grants[i].task, grants[i].filter);
  }
}
