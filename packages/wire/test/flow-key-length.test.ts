import { describe, expect, it } from 'vitest';
import { extractFlowKey, FlowKey, FlowKeyStatus } from '../src/index.ts';

describe('flow key of a frame inside a larger buffer', () => {
  it('reads nothing past the given length', () => {
    // Ethernet + IPv4 (UDP) header, then the UDP header: 42 bytes; the buffer has stale bytes after it.
    const frame = new Uint8Array(2048).fill(0xee);
    frame.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00], 0);
    frame.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    frame.set([0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0], 34);
    const key = new FlowKey();
    expect(extractFlowKey(frame, key, 42)).toBe(FlowKeyStatus.OK);
    expect(key.dstPort).toBe(53);
    expect(key.l4Offset).toBe(34);
    // Cut inside the UDP header: truncated, whatever the stale bytes after it say.
    expect(extractFlowKey(frame, key, 36)).toBe(FlowKeyStatus.TRUNCATED);
    expect(extractFlowKey(frame, key, 20)).toBe(FlowKeyStatus.TRUNCATED);
    // A length beyond the buffer is clamped to it.
    expect(extractFlowKey(frame.subarray(0, 42), key, 5000)).toBe(FlowKeyStatus.OK);
  });
});
