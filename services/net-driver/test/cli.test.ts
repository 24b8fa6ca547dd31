import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PcapReader, PcapWriter } from '../src/wire/pcap-file.ts';
import { frame, MAC, PEER } from './helpers.ts';

const run = promisify(execFile);
const bin = new URL('../../../packages/cli/bin/exonet.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'exonet-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('exonet nic', () => {
  it('captures generated frames, in-thread and with the model in a worker', async () => {
    for (const extra of [[], ['--worker']]) {
      const { stdout } = await run(process.execPath, [
        bin,
        'nic',
        'capture',
        '--wire',
        'gen:60:10',
        '--count',
        '3',
        ...extra,
      ]);
      const lines = stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toBe('02:00:00:00:00:fe > 00:e0:4c:69:81:69, ethertype 0x88b5, length 60');
    }
  });

  it('sends the frames of a pcap file out of the NIC', async () => {
    const input = join(dir, 'in.pcap');
    const output = join(dir, 'out.pcap');
    const w = new PcapWriter(input);
    for (let i = 0; i < 4; i++) w.write(frame(PEER, 64 + i, i, MAC));
    w.close();
    const { stdout } = await run(process.execPath, [
      bin,
      'nic',
      'send',
      '--wire',
      `pcap:out=${output}`,
      '--pcap',
      input,
    ]);
    expect(stdout).toContain('4 frames sent');
    const r = new PcapReader(readFileSync(output));
    const lengths: number[] = [];
    for (let rec = r.next(); rec; rec = r.next()) lengths.push(rec.data.length);
    expect(lengths).toEqual([64, 65, 66, 67]);
  });

  it('names a bad wire or MAC and exits 1', async () => {
    for (const args of [
      ['nic', 'capture', '--wire', 'udp:abc'],
      ['nic', 'capture', '--wire', 'null', '--mac', 'zz'],
    ]) {
      const err = await run(process.execPath, [bin, ...args]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 1 });
      expect((err as { stderr: string }).stderr).toMatch(/bad wire "udp:abc"|expected a MAC address/);
    }
  });
});
