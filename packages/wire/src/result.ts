/**
 * Outcome of parsing bytes from the wire. Parsers never throw on hostile input: they return a typed error
 * with a stable code instead.
 */

/** Stable error codes of the wire package. */
export type WireErrorCode =
  /** The buffer is shorter than the header or a length field says. */
  | 'EXO_ERR_WIRE_TRUNCATED'
  /** A field holds a value the format forbids (bad version, header length below minimum, ...). */
  | 'EXO_ERR_WIRE_MALFORMED'
  /** The checksum does not verify. */
  | 'EXO_ERR_WIRE_CHECKSUM'
  /** Well-formed but outside what this package represents (e.g. ARP for a non-Ethernet/IPv4 pair). */
  | 'EXO_ERR_WIRE_UNSUPPORTED';

/** A parse failure: a stable code and a message naming what is wrong. */
export interface WireError {
  readonly code: WireErrorCode;
  readonly message: string;
}

/** Either the parsed value or the reason it could not be parsed. */
export type WireResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: WireError };

/** Builds a successful result. */
export function ok<T>(value: T): WireResult<T> {
  return { ok: true, value };
}

/** Builds a failed result. */
export function fail<T = never>(code: WireErrorCode, message: string): WireResult<T> {
  return { ok: false, error: { code, message } };
}

/** Builds a truncation error naming the layer, the need and what came. */
export function truncated(what: string, need: number, got: number): WireError {
  return { code: 'EXO_ERR_WIRE_TRUNCATED', message: `${what}: expected at least ${need} bytes, got length=${got}` };
}
