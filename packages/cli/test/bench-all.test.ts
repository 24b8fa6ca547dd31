import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BenchmarkLoader } from '../src/bench.ts';
import { runAllBenchmarks } from '../src/bench-all.ts';

// Stand-ins with the output shapes of the real e2e, demux and ipc benchmarks (each real one has its own
// --quick test), plus one that fails: bench all must record it and still write everything.
const fake =
  (result: Record<string, unknown>): BenchmarkLoader =>
  async () => ({
    run: async ({ log }) => {
      log('running');
      return result;
    },
  });
const benchmarks = new Map<string, BenchmarkLoader>([
  [
    'e2e',
    fake({
      receivers: [1, 100, 1000],
      exonet_pps: [500_000, 200_000, 50_000],
      linux_udp_pps: [80_000, 90_000, 40_000],
      linux_af_packet_pps: [60_000, 20_000, null],
      exonet_cpu_us_per_datagram: [1, 3, 10],
      linux_udp_cpu_us_per_datagram: [5, 5, 6],
      linux_af_packet_cpu_us_per_datagram: [6, 20, null],
    }),
  ],
  ['demux', fake({ tasks: [1, 10, 100], ns_per_packet: [50, 55, 60], linear_ns_per_packet: [40, 300, 3000] })],
  ['ipc', fake({ ring_thread_msgs_per_s: 1e6, postmessage_msgs_per_s: 2e5, ratio_x: 5 })],
  [
    'broken',
    async () => ({
      run: async () => {
        throw new Error('no such device');
      },
    }),
  ],
]);

let out = '';
afterEach(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('exonet bench all', () => {
  it('runs every benchmark, records failures, writes JSON, a report and SVG charts (dated and latest)', async () => {
    out = await mkdtemp(join(tmpdir(), 'exonet-bench-all-'));
    const date = new Date('2026-01-02T03:04:05Z');
    const all = await runAllBenchmarks(benchmarks, { quick: true, out, progress: false, date });
    expect(all.failed).toEqual(['broken']);
    expect(all.dir).toBe(join(out, '2026-01-02'));
    for (const dir of [all.dir, all.latest]) {
      const files = (await readdir(dir)).sort();
      expect(files).toEqual(['demux.svg', 'e2e-cpu.svg', 'e2e.svg', 'ipc.svg', 'log.txt', 'report.md', 'results.json']);
      const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8'));
      expect(Object.keys(results.benchmarks).sort()).toEqual(['broken', 'demux', 'e2e', 'ipc']);
      expect(results.benchmarks.broken.error).toBe('no such device');
      expect(results.machine.cores).toBeGreaterThan(0);
      const report = await readFile(join(dir, 'report.md'), 'utf8');
      expect(report).toContain('| 1000 | 50k | 40k | - | - | - |');
      expect(report).toContain('![Throughput against the number of receivers (e2e)](e2e.svg)');
      expect(report).toContain('| 1000 | 10 | 6 | - | - | - |');
      for (const svg of ['e2e.svg', 'e2e-cpu.svg', 'demux.svg', 'ipc.svg']) {
        const text = await readFile(join(dir, svg), 'utf8');
        expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
        expect(text.trim().endsWith('</svg>')).toBe(true);
        expect(text).not.toContain('NaN');
      }
    }
  });

  it('refuses an unknown name in --only', async () => {
    await expect(runAllBenchmarks(benchmarks, { quick: true, only: ['nope'], progress: false })).rejects.toThrow(
      /unknown benchmark "nope"/,
    );
  });
});
