import { describe, expect, it } from 'vitest';
import { buildLinuxHarness, runLinuxHarness } from '../src/index.ts';

describe('Linux side of the e2e benchmark', () => {
  it('delivers datagrams to N UDP sockets and to N filtered AF_PACKET sockets', async () => {
    const binary = await buildLinuxHarness();
    for (const mode of ['udp', 'af_packet'] as const) {
      // On a loaded machine a 0.2 s window can pass with the receiver never scheduled: try again then.
      let result = await runLinuxHarness(binary, mode, 3, 0.2, 21000);
      for (let i = 0; i < 4 && result.received === 0; i++) result = await runLinuxHarness(binary, mode, 3, 0.2, 21000);
      expect(result.receivers).toBe(3);
      expect(result.sent).toBeGreaterThan(0);
      expect(result.received).toBeGreaterThan(0);
      // Nothing can be delivered that was not sent: the filters pass only the three ports.
      expect(result.received).toBeLessThanOrEqual(result.sent);
    }
  });
});
