/**
 * The task-side library: attach to a driver, obtain grants, send and receive frames, protocol helpers.
 *
 * The network stack (`createStack` over a {@link FrameLink}) lives in `./net/`.
 * @packageDocumentation
 */

export { attachViaSocket, type SocketAttachment } from './attach-socket.ts';
export { type ConnectOptions, DriverConnection, DriverRefusal, type TxCounters } from './driver-connection.ts';
export {
  GrantClient,
  type GrantClientOptions,
  GrantRequestError,
  type GrantWish,
  type HeldGrant,
} from './grant-client.ts';
export * from './net/index.ts';
export { attachFromEnvironment, type TaskEnvironment, taskEnvironment } from './task-environment.ts';
export { TaskNet, type TaskNetOptions } from './task-net.ts';
