/** `exonet bench revocation --quick`: runs end to end (real etcd cluster, replicas, followers); output shape only. */
import { expect, it } from 'vitest';
import { run } from '../src/bench/revocation.ts';

it('bench revocation --quick reports drivers and latency percentiles', async () => {
  const lines: string[] = [];
  const result = await run({ quick: true, log: (l) => lines.push(l) });
  expect(result).toMatchObject({ drivers: 3, revocations: 20 });
  for (const key of ['p50_ms', 'p99_ms', 'from_request_p50_ms', 'from_request_p99_ms']) {
    expect(typeof result[key], key).toBe('number');
    expect(result[key] as number, key).toBeGreaterThanOrEqual(0);
  }
  expect(lines.length).toBeGreaterThan(0);
}, 180_000);
