/**
 * The retransmission timeout estimator of RFC 6298 (SRTT, RTTVAR, exponential backoff).
 */

/** Bounds of the estimator. */
export interface RtoOptions {
  /** Initial RTO before any sample (RFC 6298 section 2.1: 1 s). */
  readonly initialMs?: number;
  /**
   * Lower bound. RFC 6298 section 2.4 says 1 s; Linux uses 200 ms, and so do we by default, because on a LAN
   * a 1 s floor makes every loss cost a second.
   */
  readonly minMs?: number;
  /** Upper bound (RFC 6298 section 2.5 allows a maximum of at least 60 s). */
  readonly maxMs?: number;
  /** Clock granularity G (section 2). */
  readonly granularityMs?: number;
}

/** RTO state of one connection. */
export class RtoEstimator {
  #srtt = -1;
  #rttvar = 0;
  #rto: number;
  #backoff = 0;
  readonly #min: number;
  readonly #max: number;
  readonly #g: number;

  constructor(opts: RtoOptions = {}) {
    this.#rto = opts.initialMs ?? 1000;
    this.#min = opts.minMs ?? 200;
    this.#max = opts.maxMs ?? 60_000;
    this.#g = opts.granularityMs ?? 1;
  }

  /** The current timeout including backoff, in milliseconds. */
  get rto(): number {
    return Math.min(this.#max, this.#rto * 2 ** this.#backoff);
  }
  /** Smoothed RTT, or -1 before the first sample. */
  get srtt(): number {
    return this.#srtt;
  }
  /** Number of consecutive backoffs (timeouts without a new sample or new ACK). */
  get backoffs(): number {
    return this.#backoff;
  }

  /** Feeds a round-trip sample (never from a retransmitted segment: Karn's algorithm, section 3). */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    if (this.#srtt < 0) {
      // Section 2.2: the first measurement.
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      // Section 2.3 with alpha = 1/8, beta = 1/4; RTTVAR is updated before SRTT.
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    this.#rto = Math.min(this.#max, Math.max(this.#min, this.#srtt + Math.max(this.#g, 4 * this.#rttvar)));
    this.#backoff = 0;
  }

  /** Section 5.5: the timer expired, double the timeout. */
  backoff(): void {
    if (this.rto < this.#max) this.#backoff++;
  }

  /** New data was acknowledged: keep the estimate but drop the backoff (section 5.7's spirit). */
  resetBackoff(): void {
    this.#backoff = 0;
  }
}
