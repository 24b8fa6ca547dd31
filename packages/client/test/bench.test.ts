import { describe, expect, it } from 'vitest';
import { run } from '../src/bench/tcp.ts';

describe('exonet bench tcp (quick: output shape only, never timings)', () => {
  it('moves the bytes and reports a rate', async () => {
    const lines: string[] = [];
    const out = await run({ quick: true, log: (l) => lines.push(l) });
    expect(out).toMatchObject({ bytes: 256 * 1024 });
    expect(typeof out.mbytes_per_s).toBe('number');
    expect(lines.length).toBe(1);
  });
});
