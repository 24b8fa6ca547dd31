import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { attachViaSocket } from '@exonet/client';
import { generateSigningKey, jwksDocument } from '@exonet/grant';
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

describe('exonet driver', () => {
  it('names a --server that is not an http(s) URL and exits 1 before starting anything', async () => {
    for (const server of ['notaurl', 'ftp://x', 'http://127.0.0.1:7480,file:///etc/passwd']) {
      const err = await run(process.execPath, [bin, 'driver', '--server', server]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 1 });
      expect((err as { stderr: string }).stderr).toMatch(
        /^exonet: --server: ".*" is not an http:\/\/ or https:\/\/ URL\n$/,
      );
    }
  });

  it('serves task processes on its attach socket, naming them by uid; refuses to take a live socket', async () => {
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify(jwksDocument([generateSigningKey()])));
    const socket = join(dir, 'drv.sock');
    const uid = process.getuid?.() ?? 0;
    const child = spawn(
      process.execPath,
      [
        bin,
        'driver',
        '--id',
        'cli-drv',
        '--jwks',
        jwks,
        '--listen',
        '127.0.0.1:0',
        '--attach-socket',
        socket,
        '--attach-principal',
        `${uid}=carol`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('tasks attach at') && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(out).toContain(`tasks attach at ${socket}`);
      const task = await attachViaSocket(socket);
      expect(task.principal).toBe('carol');
      expect(task.driver).toBe('cli-drv');
      await task.connection.close();
      // A second driver on the same socket is refused: the first still listens there.
      const second = await run(process.execPath, [
        bin,
        'driver',
        '--jwks',
        jwks,
        '--listen',
        '127.0.0.1:0',
        '--attach-socket',
        socket,
      ]).catch((e: { code: number; stderr: string }) => e);
      expect((second as { code: number }).code).toBe(1);
      expect((second as { stderr: string }).stderr).toContain('another process listens');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
});
