/**
 * The wire: what a NIC model's PHY is plugged into. Frames on our wires carry no FCS (as on a TAP device, in
 * pcap files and in QEMU's dgram netdev); the NIC model appends and checks it. A wire reports frames that
 * arrived corrupted with {@link WIRE_FCS_BAD}.
 * @module
 */

/** Shortest frame on an Ethernet wire without the FCS: a sending MAC pads shorter ones with zeros. */
export const MIN_WIRE_FRAME = 60;

/**
 * Pads `frame` to {@link MIN_WIRE_FRAME} into `scratch` when it is shorter, as the far end's MAC would have:
 * frames from a TAP device or a capture taken on the sending host are not padded yet (an ARP request is 42
 * bytes there). Returns the frame to deliver.
 */
export function padShortFrame(frame: Uint8Array, scratch: Uint8Array): Uint8Array {
  if (frame.length >= MIN_WIRE_FRAME) return frame;
  scratch.fill(0);
  scratch.set(frame);
  return scratch;
}

/** Flag for {@link WirePort.deliver}: the frame arrived with a bad FCS (fault injection, a corrupted link). */
export const WIRE_FCS_BAD = 1;

/** The NIC side of a wire: the wire calls these. */
export interface WirePort {
  /**
   * A frame arrives from the wire (destination MAC first, no FCS). The NIC copies what it keeps before
   * returning, so the wire may reuse `frame` at once.
   * @param flags WIRE_* flags ({@link WIRE_FCS_BAD})
   * @param fcs the frame's FCS as it arrived (CRC-32 of the frame, unsigned), when the wire carries it; the
   *   NIC computes it otherwise. It is what the NIC DMAs after the frame; its check is `flags`.
   */
  deliver(frame: Uint8Array, flags?: number, fcs?: number): void;
  /** Carrier (link) went up or down. */
  setCarrier(up: boolean): void;
}

/** A wire backend. */
export interface Wire {
  /** Human-readable description (the spec it was made from). */
  readonly description: string;
  /** Plugs a NIC in: the wire delivers incoming frames to `port` and reports carrier through it. */
  attach(port: WirePort): void;
  /**
   * The NIC sends `data[offset, offset + length)` (no FCS). The bytes are valid only during the call: a wire
   * that keeps them copies.
   */
  transmit(data: Uint8Array, offset: number, length: number): void;
  /** Releases sockets, files and timers. */
  close(): Promise<void>;
}

/** A wire that can be pumped: it produces incoming frames when asked (generators, capture replay). */
export interface FrameSource {
  /**
   * Delivers up to `max` frames to the attached port.
   * @returns how many were delivered; 0 once the source is exhausted
   */
  pump(max: number): number;
  /** True when no more frames will come. */
  readonly done: boolean;
}
