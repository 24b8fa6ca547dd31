import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ringBytes } from '../src/layout.ts';
import { initRing, RingConsumer } from '../src/ring.ts';
import { futexDoorbell, SharedMemory } from '../src/shm.ts';
import { mix } from './fixtures/stress.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'exonet-ipc-c-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a C program written from docs/ipc-layout.md', () => {
  it('joins a ring in POSIX shared memory and streams a million checked descriptors to TypeScript', async () => {
    const exe = join(dir, 'ring-producer');
    await run('cc', ['-O2', '-std=c11', '-o', exe, new URL('./c/ring-producer.c', import.meta.url).pathname]);
    const capacity = 64;
    const count = 1_000_000;
    const shm = SharedMemory.create(ringBytes(capacity, 16));
    try {
      initRing(shm.buffer, 0, capacity);
      const ring = new RingConsumer({ buffer: shm.buffer, capacity, doorbell: futexDoorbell });
      const producer = run(exe, [shm.name, String(capacity), String(count)]);
      let failed = false;
      producer.catch(() => {
        failed = true;
      });
      // Consume on the event loop with async waits, so the child's exit is observed too.
      const batch = new Uint32Array(32 * 4);
      let seq = 0;
      let errors = 0;
      while (seq < count && !failed) {
        const n = ring.dequeueBurst(batch, 32);
        if (n === 0) {
          await ring.readable(1, 1000);
          continue;
        }
        for (let i = 0; i < n; i++, seq++) {
          const m = mix(seq);
          if (batch[i * 4] !== seq || batch[i * 4 + 1] !== m || batch[i * 4 + 3] !== (seq ^ m ^ 0xa5a5a5a5) >>> 0) {
            errors++;
          }
        }
      }
      await producer;
      expect(errors).toBe(0);
      expect(seq).toBe(count);
      expect(ring.ready(1)).toBe(0);
    } finally {
      shm.close();
      SharedMemory.unlink(shm.name);
    }
  });
});
