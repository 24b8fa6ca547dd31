import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnProcess } from '@exonet/ipc';
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

  it("lets the user's own process, started from a shell, attach through the socket and serve a UDP port", async () => {
    const data = mkdtempSync(join(tmpdir(), 'exonet-up-'));
    const up = await runUp({ wire: 'sim', ip: '10.77.0.2/24', data, listen: '127.0.0.1:0', log: () => {} });
    const example = new URL('../../../examples/udp-echo-process.ts', import.meta.url);
    const child = spawnProcess(example, ['--port', '5007', '--data', data], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    try {
      expect(statSync(up.local.file).mode & 0o777).toBe(0o600);
      await once(child, 'message');
      const task = up.driver.status().tasks.find((t) => t.principal === 'local-user');
      expect(task?.grants.map((g) => g.dir).sort()).toEqual(['rx', 'tx']);
      // The simulated peer sends to the new port and gets its datagram back.
      const echoes: string[] = [];
      const peerStack = up.peer!.stack;
      const ep = peerStack.bindUdp(61007, { onDatagram: (d) => echoes.push(new TextDecoder().decode(d.data)) });
      const deadline = Date.now() + 15_000;
      while (echoes.length === 0 && Date.now() < deadline) {
        ep.send(new TextEncoder().encode('hello 5007'), '10.77.0.2', 5007);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(echoes[0]).toBe('hello 5007');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await up.close();
      rmSync(data, { recursive: true, force: true });
    }
  });
});
