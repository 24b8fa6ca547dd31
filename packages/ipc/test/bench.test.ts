import { describe, expect, it } from 'vitest';
import { benchmarks } from '../src/cli.ts';

describe('exonet bench ipc --quick', () => {
  it('measures every figure side by side and reports them under the agreed keys', async () => {
    const bench = await benchmarks.ipc();
    const lines: string[] = [];
    const result = await bench.run({ quick: true, log: (l) => lines.push(l) });
    for (const key of [
      'ring_thread_msgs_per_s',
      'ring_process_msgs_per_s',
      'postmessage_msgs_per_s',
      'postmessage_batched_msgs_per_s',
      'unix_socket_msgs_per_s',
      'ring_thread_gbps_1500',
      'channel_thread_msgs_per_s',
      'ratio_ring_thread_vs_postmessage',
      'ratio_ring_thread_vs_postmessage_batched',
      'ratio_ring_process_vs_unix_socket',
    ]) {
      expect(typeof result[key], key).toBe('number');
      // Only the shape: figures from a quick run on a busy machine mean nothing, but they are positive numbers.
      expect(Number.isFinite(result[key]), key).toBe(true);
      expect(result[key] as number, key).toBeGreaterThan(0);
    }
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(lines.length).toBeGreaterThan(5);
  }, 120_000);
});
