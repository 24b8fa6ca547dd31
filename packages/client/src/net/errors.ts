/**
 * Errors of the task-side network stack: each carries a stable code (`EXO_ERR_NET_<WHAT>`).
 */

/** Stable error codes of the stack. */
export type NetErrorCode =
  /** ARP got no answer after all retries. */
  | 'EXO_ERR_NET_ARP_TIMEOUT'
  /** No route: the destination is off-link and no gateway is configured. */
  | 'EXO_ERR_NET_NO_ROUTE'
  /** The port is already bound or listened on. */
  | 'EXO_ERR_NET_PORT_IN_USE'
  /** An argument is out of range (port, address, size). */
  | 'EXO_ERR_NET_INVALID_ARGUMENT'
  /** The peer answered the SYN with RST. */
  | 'EXO_ERR_NET_CONNECTION_REFUSED'
  /** The peer reset an established connection. */
  | 'EXO_ERR_NET_CONNECTION_RESET'
  /** Retransmissions gave up (RFC 9293 section 3.8.3, R2) or the handshake timed out. */
  | 'EXO_ERR_NET_TIMEOUT'
  /** The socket, endpoint or stack is closed. */
  | 'EXO_ERR_NET_CLOSED'
  /** The datagram exceeds what the stack can send. */
  | 'EXO_ERR_NET_MESSAGE_TOO_LONG';

/** An error from the stack with a stable code and a message naming what is wrong. */
export class NetError extends Error {
  constructor(
    readonly code: NetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'NetError';
  }
}
