import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChannel } from '../src/driver-channel.ts';
import { ChannelState } from '../src/layout.ts';
import { attachChannel } from '../src/task-channel.ts';

const FRAME = 64;
const FRAMES = 8;
const u32 = fc.integer({ min: 0, max: 0xffffffff });
// Offsets near the valid ones are the interesting ones; any u32 must be harmless too.
const offset = fc.oneof(
  fc.integer({ min: 0, max: FRAMES - 1 }).map((i) => i * FRAME),
  fc.integer({ min: 0, max: FRAMES * FRAME + FRAME }),
  u32,
);
const length = fc.oneof(fc.integer({ min: 0, max: FRAME + 1 }), u32);

type Command =
  | { op: 'postRx'; offset: number }
  | { op: 'send'; offset: number; length: number; tag: number }
  | { op: 'scribble'; word: number; value: number }
  | { op: 'request'; length: number }
  | { op: 'taskFlush' }
  | { op: 'taskDrain' }
  | { op: 'driverRx'; size: number }
  | { op: 'driverTx'; keep: boolean }
  | { op: 'driverFlush' }
  | { op: 'driverControl' };

// Scribbles aim at ring indices and flags half the time (word offsets 16, 32, 48, 56 of a ring header).
const ringWord = fc
  .tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom(16, 32, 48, 49, 56, 57))
  .map(([ring, w]) => -1 - (ring * 64 + w));
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('postRx' as const), offset }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('send' as const), offset, length, tag: u32 }), weight: 4 },
  {
    arbitrary: fc.record({ op: fc.constant('scribble' as const), word: fc.oneof(fc.nat(), ringWord), value: u32 }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ op: fc.constant('request' as const), length: fc.integer({ min: 0, max: 240 }) }),
    weight: 1,
  },
  { arbitrary: fc.constant({ op: 'taskFlush' as const }), weight: 3 },
  { arbitrary: fc.constant({ op: 'taskDrain' as const }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('driverRx' as const), size: fc.integer({ min: 0, max: 100 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('driverTx' as const), keep: fc.boolean() }), weight: 3 },
  { arbitrary: fc.constant({ op: 'driverFlush' as const }), weight: 2 },
  { arbitrary: fc.constant({ op: 'driverControl' as const }), weight: 1 },
);

describe('fuzzed descriptors and ring headers from the untrusted side', () => {
  it('never make the driver throw, lose track of a frame, or touch another task', () => {
    const seen = { errors: 0, sent: 0, disconnected: 0 };
    fc.assert(
      fc.property(fc.array(command, { minLength: 10, maxLength: 150, size: 'max' }), (commands) => {
        const victim = createChannel({ frameCount: FRAMES, frameSize: FRAME });
        const victimTask = attachChannel(victim.handle, { rxBuffers: 2 });
        victimTask.pool.bytes.fill(0x5a);
        const driver = createChannel({ frameCount: FRAMES, frameSize: FRAME, maxErrors: 24 });
        const task = attachChannel(driver.handle, { rxBuffers: 2 });
        const segment = new Uint32Array((driver.handle as { buffer: SharedArrayBuffer }).buffer);
        const ringWords = driver.layout.poolOffset >> 2;
        const held: number[] = [];
        const ringHeaderWord = (x: number) => (driver.layout.rings[x >> 6].offset >> 2) + (x & 63);
        for (const c of commands) {
          // The task is the attacker: its own calls may fail in any way; only the driver is held to account.
          try {
            if (c.op === 'postRx') task.postRx(c.offset);
            else if (c.op === 'send') task.send(c.offset, c.length, c.tag);
            else if (c.op === 'scribble') {
              // A negative word names a header word of ring -word-1 / 64 (see ringWord).
              const w = c.word >= 0 ? c.word % ringWords : ringHeaderWord(-c.word - 1);
              segment[w] = c.value;
            } else if (c.op === 'request')
              task.request({ type: 1, id: 1, status: 0, payload: new Uint8Array(c.length) });
            else if (c.op === 'taskFlush') task.flush();
            else if (c.op === 'taskDrain') {
              while (task.nextCompletion() >= 0);
              while (task.nextRx() >= 0);
            }
          } catch {}
          if (c.op === 'driverRx') driver.receive(new Uint8Array(c.size).fill(0xee));
          else if (c.op === 'driverTx') {
            for (let off = driver.nextTx(); off >= 0; off = driver.nextTx()) {
              expect(driver.txLength).toBeGreaterThan(0);
              expect(driver.txLength).toBeLessThanOrEqual(FRAME);
              seen.sent++;
              // A completion may not fit if the task stopped draining: the frame then stays the driver's.
              if (c.keep || (!driver.completeTx(off) && driver.connected)) held.push(off);
            }
          } else if (c.op === 'driverFlush') driver.flush();
          else if (c.op === 'driverControl') while (driver.readRequest());
          const o = driver.ownership();
          expect(o.task + o.driverRx + o.driverTx + o.reclaimed).toBe(FRAMES);
          expect(o.driverTx).toBe(held.length);
        }
        for (const off of held.splice(0)) if (!driver.completeTx(off) && driver.connected) held.push(off);
        driver.flush();
        expect(driver.ownership().driverTx).toBe(held.length);
        seen.errors += driver.errors;
        if (!driver.connected) seen.disconnected++;
        if (!driver.connected) expect(driver.ownership()).toMatchObject({ driverTx: 0, driverRx: 0, task: 0 });
        // The other task's memory and channel are untouched.
        expect(victimTask.pool.bytes.every((b) => b === 0x5a)).toBe(true);
        expect([victim.errors, victim.connected, victimTask.connected]).toEqual([0, true, true]);
        driver.close();
        victim.close();
        expect(victimTask.connected).toBe(false);
      }),
      { numRuns: 400, seed: 0x1e5c0de },
    );
    // The runs did reach the interesting paths: valid frames sent, violations counted, disconnects.
    expect(seen.sent).toBeGreaterThan(0);
    expect(seen.errors).toBeGreaterThan(0);
    expect(seen.disconnected).toBeGreaterThan(0);
  });

  it('a task that scribbles over the channel state cannot reattach or crash the driver', () => {
    const driver = createChannel({ frameCount: 4, frameSize: 64 });
    const task = attachChannel(driver.handle);
    new Int32Array((driver.handle as { buffer: SharedArrayBuffer }).buffer)[6] = ChannelState.CREATED;
    expect(() => attachChannel(driver.handle)).not.toThrow(); // the memory is the task's to wreck...
    task.send(12345, 1);
    task.flush();
    expect(driver.nextTx()).toBe(-1); // ...but the driver still validates everything it reads
    expect(driver.errors).toBe(1);
  });
});
