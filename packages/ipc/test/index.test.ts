import { describe, expect, it } from 'vitest';
import * as ipc from '../src/index.ts';

describe('public API', () => {
  it('exports what drivers and tasks use', () => {
    for (const name of [
      'createChannel',
      'attachChannel',
      'DriverChannel',
      'TaskChannel',
      'PacketPool',
      'RingProducer',
      'RingConsumer',
      'initRing',
      'sleepUntil',
      'sleepUntilAsync',
      'ring',
      'SharedMemory',
      'futexDoorbell',
      'atomicsDoorbell',
      'IpcError',
      'IpcErrorCodes',
      'Descriptor',
      'DescriptorStatus',
      'RingHeader',
      'ChannelHeader',
      'RingId',
      'FrameOwner',
      'Violation',
      'spawnWorker',
      'spawnProcess',
    ]) {
      expect((ipc as Record<string, unknown>)[name], name).toBeDefined();
    }
  });
});
