/**
 * The interrupt line between a NIC model and the driver's thread. The model asserts it; the driver's handler
 * runs later, never inside the model's own call (as a real interrupt arrives after the bus write that caused
 * it), and several assertions before the handler runs coalesce into one call, as a level-triggered line does.
 * @module
 */

/** The driver's side of an interrupt line. */
export interface InterruptLine {
  /** Installs the handler (null removes it). */
  setHandler(handler: (() => void) | null): void;
  /** Stops delivering interrupts and releases what the line holds. */
  close(): void;
}

/** An interrupt line within one thread: assert() schedules the handler as a microtask. */
export class LocalInterruptLine implements InterruptLine {
  private handler: (() => void) | null = null;
  private pending = false;
  private closed = false;
  /** The last error a handler threw (an interrupt handler has nobody to throw to). */
  lastError: unknown;
  private readonly run = (): void => {
    this.pending = false;
    if (this.closed) return;
    try {
      this.handler?.();
    } catch (err) {
      this.lastError = err;
    }
  };

  /** The model side: assert the line. */
  readonly assert = (): void => {
    if (this.pending || this.closed || !this.handler) return;
    this.pending = true;
    queueMicrotask(this.run);
  };

  setHandler(handler: (() => void) | null): void {
    this.handler = handler;
  }

  close(): void {
    this.closed = true;
    this.handler = null;
  }
}
