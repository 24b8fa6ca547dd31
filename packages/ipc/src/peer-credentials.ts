/**
 * Who is at the other end of a Unix domain socket, as the kernel recorded it at connect time (SO_PEERCRED):
 * what a driver's attach socket uses to name the principal of a process that attaches without a launcher.
 * @module
 */
import type { Socket } from 'node:net';
import { IpcError } from './errors.ts';
import { callNative } from './native.ts';

/** The peer process's pid, uid and gid when it connected. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * The credentials of a connected Unix domain socket's peer (Linux).
 * @throws IpcError EXO_ERR_IPC_INVALID_ARGUMENT when the socket has no file descriptor (not connected, not a
 *   Unix domain socket), EXO_ERR_IPC_NATIVE when the kernel refuses
 */
export function peerCredentials(socket: Socket): PeerCredentials {
  // libuv exposes the descriptor of a pipe handle; there is no public API for SO_PEERCRED in Node.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new IpcError('EXO_ERR_IPC_INVALID_ARGUMENT', 'peerCredentials: the socket has no file descriptor');
  }
  return callNative('peer credentials', (n) => n.peerCredentials(fd));
}
