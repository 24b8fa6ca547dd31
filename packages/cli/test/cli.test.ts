import { execFile } from 'node:child_process';
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

  it('rejects an unknown command with exit code 1', async () => {
    const err = await run(process.execPath, [bin, 'frobnicate']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 1 });
  });
});
