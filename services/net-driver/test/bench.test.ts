import { describe, expect, it } from 'vitest';
import { benchmarks } from '../src/cli.ts';

describe('exonet bench nic', () => {
  it('runs quick and returns the documented keys as numbers', async () => {
    const bench = await benchmarks.nic();
    const lines: string[] = [];
    const result = await bench.run({ quick: true, log: (l) => lines.push(l) });
    for (const key of [
      'rx_pps_64',
      'tx_pps_64',
      'rx_gbps_1500',
      'rx_pps_64_worker',
      'tx_gbps_1500',
      'tx_pps_64_worker',
      'rx_gbps_1500_worker',
      'rx_pps_64_per_cpu_second',
    ]) {
      // Only the shape: a quick run on a busy machine may measure anything.
      expect(typeof result[key], key).toBe('number');
      expect(Number.isFinite(result[key]), key).toBe(true);
      expect(result[key] as number, key).toBeGreaterThanOrEqual(0);
    }
    expect(lines.length).toBeGreaterThan(0);
  });
});
