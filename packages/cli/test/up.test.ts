import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runUp } from '../src/up/run-up.ts';

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('exonet up on embedded defaults', () => {
  it('comes up, and the simulated peer gets ping, UDP echo and HTTP answers from the example tasks', async () => {
    const data = mkdtempSync(join(tmpdir(), 'exonet-up-'));
    const lines: string[] = [];
    const up = await runUp({ wire: 'sim', ip: '10.77.0.2/24', data, listen: '127.0.0.1:0', log: (l) => lines.push(l) });
    try {
      expect(up.tasks.map((t) => t.role).sort()).toEqual(['arp-icmp', 'http', 'udp-echo']);
      expect(up.grants.length).toBe(6);
      const peer = up.peer!;
      await until(() => peer.stats.pingReplies >= 2 && peer.stats.udpEchoed >= 2 && peer.stats.httpOk >= 1, 'traffic');
      const health = await fetch(`${up.server.url}/healthz`);
      expect(health.ok).toBe(true);
      const status = up.driver.status();
      expect(status.suspended).toBe(false);
      expect(status.counters.txDenied).toBe(0);
      expect(lines.some((l) => l.includes('HTTP/1.1 200 OK'))).toBe(true);
    } finally {
      await up.close();
      rmSync(data, { recursive: true, force: true });
    }
  });
});
