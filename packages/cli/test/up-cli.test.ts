import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/*
 * What `npm start` runs (`exonet up`), as a child process from the command line on a fresh data folder: it
 * comes up, the simulated peer gets an HTTP page from the example tasks, the permission server reports
 * healthy, and Ctrl-C (SIGINT) stops everything cleanly with exit code 0.
 */

const bin = new URL('../bin/exonet.js', import.meta.url).pathname;
const root = new URL('../../../', import.meta.url).pathname;

describe('exonet up from the command line (npm start)', () => {
  it('comes up, serves the simulated peer, reports healthy and stops cleanly on SIGINT', async () => {
    const data = mkdtempSync(join(tmpdir(), 'exonet-up-cli-'));
    // --for: a bound on the child should this test die before its SIGINT; long enough never to come first.
    const child = spawn(process.execPath, [bin, 'up', '--data', data, '--listen', '127.0.0.1:0', '--for', '90'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let done = false;
    void exited.then(() => {
      done = true;
    });
    const waitFor = async (what: string, cond: () => boolean, ms = 60_000) => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (done) throw new Error(`exonet up exited while waiting for ${what}:\n${out}\n${err}`);
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await waitFor("'exonet is up:'", () => out.includes('exonet is up:'));
      await waitFor('the peer to get an HTTP page', () =>
        out.split('\n').some((l) => l.startsWith('peer:') && l.includes('HTTP/1.1 200 OK')),
      );
      const url = /permission server\s+(http:\/\/\S+)/.exec(out)?.[1];
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);

      child.kill('SIGINT');
      const code = await exited;
      expect(out).toContain('exonet up: stopped cleanly');
      expect(code).toBe(0);
    } finally {
      if (!done) child.kill('SIGKILL');
      await exited;
      rmSync(data, { recursive: true, force: true });
    }
  }, 120_000);
});
