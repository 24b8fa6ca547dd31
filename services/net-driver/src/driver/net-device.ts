/**
 * THE DRIVER-SIDE INTERFACE: what the exokernel core (and anything else above a NIC driver) uses. Any NIC
 * driver implements {@link NetDevice} in one module; wrapper devices (loopback, pcap tap, fault injection)
 * implement it too, so the layers above are tested without hardware. See docs/driver-interface.md.
 *
 * Design rules:
 * - No per-frame allocation: received frames are lent as views of the driver's DMA buffers for the duration
 *   of a callback; transmit buffers are the driver's DMA buffers themselves.
 * - Transmit is two-phase, because the exokernel core must copy a task's frame straight into the NIC's TX
 *   buffer, run its filters on that copy, and only then let the NIC see it: {@link NetDevice.txAcquire} lends
 *   a buffer, {@link NetDevice.txSubmit} stages it (still invisible to the NIC) or {@link NetDevice.txDiscard}
 *   drops it, and {@link NetDevice.txCommit} hands every staged frame over with one doorbell.
 * - Single-threaded: every method is called from the thread that owns the device.
 * @module
 */

/**
 * Receives one frame: `frame[0, length)` is the Ethernet frame (destination MAC first, no FCS). `frame` is a
 * view of a DMA buffer lent for the duration of the call only: copy what you keep. `words`, when the device
 * gives it, is an Int32Array over the whole buffer `frame` views, from byte 0: a consumer copying by words
 * then needs no view of its own (and does not have to ask `frame.buffer`, a call per frame).
 */
export type RxSink = (frame: Uint8Array, length: number, words?: Int32Array<ArrayBufferLike>) => void;

/** What the device can do (fixed once constructed). */
export interface DeviceCapabilities {
  /** Largest frame (without FCS) the device receives and transmits. */
  readonly maxFrameSize: number;
  /** Capacity of one TX buffer from {@link NetDevice.txAcquire}. */
  readonly txBufferSize: number;
  /** How many frames can be staged or in flight at once (TX ring size). */
  readonly txQueueSize: number;
  /** RX ring size (frames the device can hold before it drops). */
  readonly rxQueueSize: number;
}

/** Link state as the PHY reports it. */
export interface LinkState {
  readonly up: boolean;
  /** Mb/s, 0 when down. */
  readonly speed: number;
  readonly fullDuplex: boolean;
}

/** Monotonic counters (the Linux rtnl_link_stats64 subset that makes sense here). */
export interface DeviceCounters {
  rxPackets: number;
  rxBytes: number;
  /** Frames the NIC flagged as bad (RES) plus frames the driver could not accept. */
  rxErrors: number;
  rxCrcErrors: number;
  /** Runts, watchdog (too long) and frames spread over several descriptors. */
  rxLengthErrors: number;
  /** Frames lost because no RX descriptor was free (the NIC's missed packet counter). */
  rxMissed: number;
  rxMulticast: number;
  /** RX descriptor unavailable events (RDU interrupts). */
  rxNoBufferEvents: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  /** Frames staged and then aborted, or dropped by a reset. */
  txDropped: number;
  linkChanges: number;
  resets: number;
}

/** A counters record with every field zero (what a device starts with). */
export function zeroCounters(): DeviceCounters {
  return {
    rxPackets: 0,
    rxBytes: 0,
    rxErrors: 0,
    rxCrcErrors: 0,
    rxLengthErrors: 0,
    rxMissed: 0,
    rxMulticast: 0,
    rxNoBufferEvents: 0,
    txPackets: 0,
    txBytes: 0,
    txErrors: 0,
    txDropped: 0,
    linkChanges: 0,
    resets: 0,
  };
}

/** Events a device reports to its user (from its interrupt handler). */
export type DeviceEvent = 'rx' | 'tx' | 'link' | 'reset';

/** A network device as the layers above the driver see it. */
export interface NetDevice {
  /** A short name for logs ("rtl8169", "loopback", ...). */
  readonly name: string;
  readonly capabilities: DeviceCapabilities;

  /** Brings the device up: reset, rings, registers, interrupts. Idempotent. */
  start(): void;
  /** Brings the device down: no more DMA, no more interrupts; staged TX frames are dropped. Idempotent. */
  stop(): void;
  /** True between start() and stop(). */
  readonly running: boolean;

  /** The station address (a copy). */
  macAddress(): Uint8Array;
  /** Current link state. */
  link(): LinkState;
  /** A snapshot of the counters. */
  counters(): DeviceCounters;

  /**
   * Which frames the device accepts besides those to its own address and broadcast.
   * @param multicast group addresses to accept (each 6 bytes)
   */
  setReceiveFilter(filter: {
    readonly promiscuous?: boolean;
    readonly allMulticast?: boolean;
    readonly multicast?: readonly Uint8Array[];
  }): void;

  /**
   * Lends received frames to `sink`, oldest first, at most `budget` of them, and also reclaims completed TX
   * buffers. When it returns fewer than `budget`, the device has re-enabled its interrupts (NAPI style).
   * @returns how many frames were passed to `sink`
   */
  receive(sink: RxSink, budget?: number): number;

  /**
   * Lends the next free TX buffer (capacity {@link DeviceCapabilities.txBufferSize}). At most one buffer is
   * lent at a time: calling again before submit/discard returns the same buffer.
   * @returns the buffer, or null when the TX queue is full, the link is down or the device is stopped
   */
  txAcquire(): Uint8Array | null;
  /** Stages the lent buffer holding a `length`-byte frame. The NIC does not see it until {@link txCommit}. */
  txSubmit(length: number): void;
  /** Returns the lent buffer unused. */
  txDiscard(): void;
  /**
   * Hands every staged frame to the NIC, in order, and rings the doorbell once.
   * @returns how many frames were handed over
   */
  txCommit(): number;
  /** Drops every staged frame (counted in txDropped). @returns how many */
  txAbort(): number;
  /** Copies `frame` into TX buffer(s) and stages it; true if staged, false if the queue is full or the link down. */
  transmit(frame: Uint8Array): boolean;

  /**
   * The handler called when something happened (frames arrived, TX buffers freed, link changed). It runs
   * outside the device's own code; typically it schedules a {@link receive} call. Null removes it.
   */
  setEventHandler(handler: ((event: DeviceEvent) => void) | null): void;
}
