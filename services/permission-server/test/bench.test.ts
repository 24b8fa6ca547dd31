import { describe, expect, it } from 'vitest';
import { benchmarks } from '../src/cli.ts';

describe('exonet bench grants --quick', () => {
  it('runs against a real server process and reports the documented keys', async () => {
    const bench = await benchmarks.grants();
    const result = await bench.run({ quick: true, log: () => {} });
    for (const key of ['grants_per_s', 'p50_ms', 'p99_ms', 'verify_per_s']) {
      expect(typeof result[key], key).toBe('number');
      expect(result[key] as number, key).toBeGreaterThan(0);
    }
  }, 180_000);
});
