import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createChannel } from '../src/driver-channel.ts';
import { ChannelHeader, RingHeader, ringBytes } from '../src/layout.ts';
import { initRing, RingConsumer, RingProducer } from '../src/ring.ts';

/** Rows of 16 bytes as "0x0040: 01 00 ...", all-zero rows left out (the spec says they are zero). */
export function hexdump(bytes: Uint8Array): string {
  const rows: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    if (row.every((b) => b === 0)) continue;
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    rows.push(`0x${at.toString(16).padStart(4, '0')}: ${hex}`);
  }
  return rows.join('\n');
}

/** The ring state of the spec's first vector, built through the public ring API. */
export function ringVector(): Uint8Array {
  const capacity = 4;
  const buffer = new SharedArrayBuffer(ringBytes(capacity, 16));
  initRing(buffer, 0, capacity, 16, 2);
  // Indices start just below 2^32, so the vector shows them wrapping.
  const u32 = new Uint32Array(buffer);
  u32[RingHeader.PRODUCER >> 2] = 0xfffffffe;
  u32[RingHeader.CONSUMER >> 2] = 0xfffffffe;
  const p = new RingProducer({ buffer, capacity });
  const c = new RingConsumer({ buffer, capacity });
  p.push(0x0000, 60, 0x11111111, 0);
  p.push(0x0800, 1514, 0x22222222, 0);
  p.push(0x1000, 42, 0x33333333, 1);
  p.publish();
  c.dequeueBurst(new Uint32Array(8), 2);
  p.push(0x1800, 64, 0x44444444, 0);
  p.push(0x2000, 128, 0x55555555, 0);
  p.publish();
  // The consumer announces it will sleep; its bell has rung 5 times before.
  u32[RingHeader.CONSUMER_BELL >> 2] = 5;
  c.arm();
  return new Uint8Array(buffer);
}

/** The channel header of the spec's second vector (driver pid written as 0 to be reproducible). */
export function channelVector(): Uint8Array {
  const driver = createChannel({ frameSize: 2048, frameCount: 4, controlCapacity: 2 });
  const buffer = (driver.handle as { buffer: SharedArrayBuffer }).buffer;
  new Uint32Array(buffer)[ChannelHeader.DRIVER_PID >> 2] = 0;
  return new Uint8Array(buffer, 0, ChannelHeader.SIZE);
}

function vectorFromSpec(name: string): string {
  const spec = readFileSync(new URL('../../../docs/ipc-layout.md', import.meta.url), 'utf8');
  const at = spec.indexOf(`<!-- vector:${name} -->`);
  expect(at, `docs/ipc-layout.md has <!-- vector:${name} -->`).toBeGreaterThanOrEqual(0);
  const block = /```text\n([\s\S]*?)```/.exec(spec.slice(at));
  return block![1].trim();
}

describe('docs/ipc-layout.md test vectors', () => {
  it('the ring vector is byte for byte what the ring code writes', () => {
    expect(vectorFromSpec('ring')).toBe(hexdump(ringVector()));
  });

  it('the channel header vector is byte for byte what createChannel writes', () => {
    expect(vectorFromSpec('channel')).toBe(hexdump(channelVector()));
  });
});

describe('error catalogue', () => {
  it('documents every error code in docs/ipc-layout.md', async () => {
    const { IpcErrorCodes } = await import('../src/errors.ts');
    const spec = readFileSync(new URL('../../../docs/ipc-layout.md', import.meta.url), 'utf8');
    for (const code of Object.keys(IpcErrorCodes)) expect(spec, code).toContain(`| ${code} |`);
  });
});
