import { describe, expect, it } from 'vitest';
import { run } from '../src/bench/e2e.ts';

describe('exonet bench e2e --quick', () => {
  it('runs all three sides on tiny sizes and emits well-formed output', async () => {
    const lines: string[] = [];
    const result = await run({ quick: true, log: (l) => lines.push(l) });
    const receivers = result.receivers as number[];
    expect(receivers).toEqual([1, 4]);
    for (const key of ['exonet_pps', 'linux_udp_pps', 'linux_af_packet_pps']) {
      const values = result[key] as (number | null)[];
      expect(values).toHaveLength(receivers.length);
      for (const v of values) expect(v === null || (Number.isFinite(v) && v >= 0)).toBe(true);
    }
    // Whatever the rate, no frame may reach a task with a wrong checksum.
    for (const d of result.exonet_detail as { corrupt: number }[]) expect(d.corrupt).toBe(0);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(lines.length).toBeGreaterThan(0);
  }, 120_000);
});
