/**
 * The error catalogue of the net-driver service: every error carries a stable code (`EXO_ERR_<AREA>_<WHAT>`)
 * and a message naming what was wrong. Hostile or malformed input (wire specs, frames, capture files,
 * descriptors written by a buggy driver) is reported with one of these, never a crash.
 * @module
 */

/** Stable codes and what each means. */
export const ERROR_CODES = {
  EXO_ERR_NIC_MEMORY: 'physical memory: size, alignment, exhaustion or an access outside the memory',
  EXO_ERR_NIC_REGISTER: 'an MMIO access at an offset or width the chip does not decode',
  EXO_ERR_NIC_FRAME: 'a frame handed to the NIC is malformed (too short, too long, not bytes)',
  EXO_ERR_NIC_STATE: 'the device is not in a state that allows the operation (not started, gone, ...)',
  EXO_ERR_NIC_CONFIG: 'an invalid device or driver option (ring size, buffer size, MAC address)',
  EXO_ERR_NIC_WORKER: 'the model worker thread failed or stopped',
  EXO_ERR_WIRE_SPEC: 'a wire specification that cannot be parsed (e.g. udp:abc)',
  EXO_ERR_WIRE_PCAP: 'a capture file that is not a readable Ethernet pcap file',
  EXO_ERR_WIRE_IO: 'the wire backend failed (socket, file)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of the service's errors. */
export class ExoNetDriverError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An error of the RTL8169 model or its driver (`EXO_ERR_NIC_...`). */
export class NicError extends ExoNetDriverError {}

/** An error of a wire backend (`EXO_ERR_WIRE_...`). */
export class WireError extends ExoNetDriverError {}
