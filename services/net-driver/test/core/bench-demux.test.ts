import { describe, expect, it } from 'vitest';
import { run } from '../../src/bench/demux.ts';

describe('exonet bench demux', () => {
  it('runs on a tiny size and emits the documented keys', async () => {
    const lines: string[] = [];
    const out = await run({ quick: true, log: (l) => lines.push(l) });
    expect(Object.keys(out).sort()).toEqual(['linear_ns_per_packet', 'ns_per_packet', 'tasks']);
    const { tasks, ns_per_packet, linear_ns_per_packet } = out as Record<string, number[]>;
    expect(tasks).toEqual([1, 10, 100]);
    for (const a of [ns_per_packet, linear_ns_per_packet]) {
      expect(a).toHaveLength(3);
      for (const v of a) expect(v).toBeGreaterThan(0);
    }
    expect(lines.length).toBeGreaterThan(0);
  });
});
