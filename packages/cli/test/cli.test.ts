import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = new URL('../bin/exonet.js', import.meta.url).pathname;

describe('exonet command line', () => {
  it('lists its commands', async () => {
    const { stdout } = await run(process.execPath, [bin, '--help']);
    expect(stdout).toContain('Usage: exonet');
    expect(stdout).toContain('bench');
  });

  it('names an unknown benchmark and exits 1', async () => {
    const err = await run(process.execPath, [bin, 'bench', 'no-such-benchmark']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stderr: string }).stderr).toContain('unknown benchmark "no-such-benchmark"');
  });

  it('exonet up names a bad --wire or --ip and exits 1 before starting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'exonet-up-bad-'));
    try {
      for (const [args, message] of [
        [['--wire', 'nope'], /^exonet: bad wire "nope": unknown kind/m],
        [['--wire', 'udp:99999:127.0.0.1:1'], /^exonet: bad wire "udp:99999:127.0.0.1:1": local port 99999/m],
        [['--ip', '10.0.0.300/24'], /^exonet: --ip: expected an IPv4 address with prefix/m],
      ] as const) {
        const data = join(dir, 'data');
        const err = await run(process.execPath, [bin, 'up', '--data', data, ...args]).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 1 });
        expect((err as { stderr: string }).stderr).toMatch(message);
        // Nothing was started: no data folder, no database.
        expect(existsSync(data)).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown command with exit code 1', async () => {
    const err = await run(process.execPath, [bin, 'frobnicate']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 1 });
  });
});
