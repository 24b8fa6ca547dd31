import type { DriverChannel } from '../driver-channel.ts';
import type { TaskChannel } from '../task-channel.ts';

/**
 * The benchmark's validated path: a task sends `count` frames of `payload` bytes on tx_active, the driver
 * validates each descriptor against its ownership table, copies the payload out and completes it on tx_free.
 */
export function runTask(task: TaskChannel, count: number, payload: number): void {
  const words = payload >> 2;
  const pool = new Uint32Array(task.pool.bytes.buffer, task.pool.bytes.byteOffset, task.pool.bytes.byteLength >> 2);
  let sent = 0;
  while (sent < count && task.connected) {
    for (let off = task.nextCompletion(); off >= 0; off = task.nextCompletion()) task.free(off);
    let n = 0;
    for (let off = task.alloc(); off >= 0; off = n < 32 && sent < count ? task.alloc() : -1) {
      const w = off >>> 2;
      pool[w] = sent;
      for (let i = 1; i < words; i++) pool[w + i] = i;
      task.send(off, payload, sent);
      sent++;
      n++;
    }
    task.flush();
    if (n === 0) task.waitWork();
  }
}

/** The driver's half; returns a checksum of the first payload words. */
export function runDriver(driver: DriverChannel, count: number): number {
  const bytes = driver.pool.bytes;
  const pool = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  const out = new Uint32Array(512);
  let got = 0;
  let sum = 0;
  while (got < count && driver.connected) {
    let n = 0;
    for (let off = driver.nextTx(); off >= 0; off = driver.nextTx()) {
      const w = off >>> 2;
      const words = driver.txLength >>> 2;
      for (let i = 0; i < words; i++) out[i] = pool[w + i];
      sum = (sum + out[0]) | 0;
      driver.completeTx(off);
      n++;
    }
    got += n;
    if (n === 0) driver.waitWork();
    else driver.flush();
  }
  return sum;
}
