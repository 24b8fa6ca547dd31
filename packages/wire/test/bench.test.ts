import { describe, expect, it } from 'vitest';
import { run } from '../src/bench/wire.ts';

describe('exonet bench wire (quick: output shape only, never timings)', () => {
  it('reports the three rates', async () => {
    const out = await run({ quick: true, log: () => {} });
    expect(Object.keys(out).sort()).toEqual([
      'emit_tcp_frame_per_s',
      'flow_key_per_s',
      'frame_bytes',
      'parse_tcp_frame_per_s',
    ]);
  });
});
