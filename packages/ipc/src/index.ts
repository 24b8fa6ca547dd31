/**
 * Lock-free SPSC rings, packet pools and channels in shared memory, between threads and processes.
 * @packageDocumentation
 */
export {
  createChannelGroup,
  DriverChannelGroup,
  driverPendingOffset,
  GROUP_MAGIC,
  GROUP_VERSION,
  type GroupHandle,
  GroupHeader,
  type GroupMemberService,
  type GroupMembership,
  type GroupOptions,
  type GroupPollerOptions,
  groupBytes,
  joinChannelGroup,
  type SharedRxHandle,
  type SharedRxReceiver,
  TaskChannelGroup,
} from './channel-group.ts';
export { copyWords, wordViewOf } from './copy-words.ts';
export { atomicsDoorbell, type Doorbell, type WaitResult } from './doorbell.ts';
export { type ChannelOptions, createChannel, DriverChannel, FrameOwner, Violation } from './driver-channel.ts';
export { IpcError, type IpcErrorCode, IpcErrorCodes } from './errors.ts';
export {
  CACHE_LINE,
  CHANNEL_MAGIC,
  ChannelHeader,
  type ChannelLayout,
  ChannelState,
  CONTROL_PAYLOAD,
  CONTROL_SLOT_SIZE,
  channelLayout,
  Descriptor,
  DescriptorStatus,
  LAYOUT_VERSION,
  RING_COUNT,
  RING_MAGIC,
  RingHeader,
  RingId,
  ringBytes,
} from './layout.ts';
export { type PeerCredentials, peerCredentials } from './peer-credentials.ts';
export { PacketPool } from './pool.ts';
export {
  type Bell,
  initRing,
  RingConsumer,
  type RingOptions,
  RingProducer,
  ring,
  sleepUntil,
  sleepUntilAsync,
} from './ring.ts';
export type { ChannelHandle, ControlMessage } from './segment.ts';
export { futexDoorbell, SharedMemory } from './shm.ts';
export { spawnProcess, spawnWorker } from './spawn.ts';
export { type AttachOptions, attachChannel, TaskChannel } from './task-channel.ts';
