import { describe, expect, it } from 'vitest';
import { run } from '../src/bench/bpf.ts';

describe('exonet bench bpf (quick: output shape only, never timings)', () => {
  it('returns one row per filter and the median ratio', async () => {
    const lines: string[] = [];
    const out = await run({ quick: true, log: (l) => lines.push(l) });
    const filters = out.filters as Record<string, unknown>[];
    expect(filters.map((f) => f.expr)).toEqual(
      expect.arrayContaining([
        'tcp dst port 80',
        'udp and dst host 10.0.0.2 and dst port 53',
        'tcp[tcpflags] & tcp-syn != 0',
        'vlan and ip6',
        'not arp',
      ]),
    );
    for (const f of filters) {
      for (const key of ['interpreter_ns', 'compiled_ns', 'shared_ns', 'libpcap_ns']) {
        expect(typeof f[key]).toBe('number');
        expect(f[key] as number).toBeGreaterThan(0);
      }
    }
    expect(typeof out.median_libpcap_over_compiled).toBe('number');
    expect(lines.length).toBeGreaterThan(0);
  });
});
