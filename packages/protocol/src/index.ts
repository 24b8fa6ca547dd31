/**
 * The task-driver protocol: control messages over a channel's control rings (attach handshake, key proof,
 * grant install and removal, status, events) and the statuses of transmitted frames. Shared by the driver
 * (services/net-driver) and the task library (@exonet/client). Specification: docs/task-protocol.md.
 * @packageDocumentation
 */
export {
  type ChunkError,
  ChunkReader,
  ChunkWriter,
  jsonMessage,
  MAX_MESSAGE_BYTES,
  type Message,
  MORE,
  parseJson,
  type Slot,
} from './chunking.ts';
export {
  type DriverEvent,
  type HelloResponse,
  type InstallRequest,
  type InstallResponse,
  MessageType,
  type ProveRequest,
  type Refusal,
  ResponseStatus,
  type TaskStatus,
  TxStatus,
} from './messages.ts';
