import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { packetSet } from '../src/bench/packets.ts';
import { writeCaptureFile } from '../src/capture-file.ts';
import { registerCommands } from '../src/cli.ts';
import { compileExpression, encodeProgram, formatProgram, interpret } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-bpf-cli-'));

/** Runs `exonet bpf ...` in-process against this package's commands only. */
async function exonet(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command('exonet').exitOverride().configureOutput({
    writeOut: (s) => {
      out += s;
    },
    writeErr: (s) => {
      err += s;
    },
  });
  registerCommands(program, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    setExitCode: (c) => {
      code = c;
    },
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) code = e.exitCode;
    else {
      err += `exonet: ${(e as Error).message}\n`;
      code = 1;
    }
  }
  return { out, err, code };
}

describe('exonet bpf compile', () => {
  it('prints like tcpdump -d by default, and -dd / -ddd on request', async () => {
    const p = compileExpression('tcp dst port 80');
    expect((await exonet('bpf', 'compile', 'tcp dst port 80')).out).toBe(formatProgram(p, 'd'));
    expect((await exonet('bpf', 'compile', '-d', 'tcp', 'dst', 'port', '80')).out).toBe(formatProgram(p, 'd'));
    expect((await exonet('bpf', 'compile', '--dd', 'tcp dst port 80')).out).toBe(formatProgram(p, 'dd'));
    expect((await exonet('bpf', 'compile', '--ddd', 'tcp dst port 80')).out).toBe(formatProgram(p, 'ddd'));
    expect((await exonet('bpf', 'compile', '-dd', 'tcp dst port 80')).out).toBe(formatProgram(p, 'dd'));
    expect((await exonet('bpf', 'compile', '-ddd', 'tcp dst port 80')).out).toBe(formatProgram(p, 'ddd'));
  });

  it('reports a bad expression with its position and exit code 1, no stack trace', async () => {
    const r = await exonet('bpf', 'compile', 'tcp or');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^exonet: position 6: /);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe('exonet bpf verify', () => {
  it('exits 0 for an accepted -ddd or -dd file', async () => {
    const p = compileExpression('vlan and ip6');
    for (const fmt of ['ddd', 'dd', 'd', 'linux'] as const) {
      const f = join(dir, `ok.${fmt}`);
      writeFileSync(f, formatProgram(p, fmt));
      const r = await exonet('bpf', 'verify', f);
      expect(r.code, fmt).toBe(0);
      expect(r.out).toMatch(/^accepted: 8 instructions/);
    }
    const bin = join(dir, 'ok.bin');
    writeFileSync(bin, encodeProgram(p));
    expect((await exonet('bpf', 'verify', bin)).code).toBe(0);
  });

  it('exits 1 with the instruction and rule for a rejected program', async () => {
    const f = join(dir, 'bad.ddd');
    writeFileSync(f, '3\n40 0 0 12\n21 0 5 2048\n6 0 0 0\n');
    const r = await exonet('bpf', 'verify', f);
    expect(r.code).toBe(1);
    expect(r.err).toContain('instruction 1');
    expect(r.err).toContain('jump-range');
  });

  it.each([
    ['missing file', '/nonexistent/prog.txt', /cannot read/],
    ['malformed text', 'junk', /line 2/],
    ['binary of a wrong length', 'short', /multiple of 8/],
  ])('exits 1 on %s', async (_, name, message) => {
    const f = name.startsWith('/') ? name : join(dir, name);
    if (name === 'junk') writeFileSync(f, '2\n6 0 0\n6 0 0 0\n');
    if (name === 'short') writeFileSync(f, Uint8Array.from([6, 0, 0, 0, 0, 0, 0]));
    const r = await exonet('bpf', 'verify', f);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
  });
});

describe('exonet bpf run', () => {
  const packets = packetSet(80, 9);
  const pcap = join(dir, 'in.pcap');
  writeFileSync(pcap, writeCaptureFile(packets));

  it('prints one return value per packet, for an expression and a program, with either engine', async () => {
    const expr = 'tcp or udp port 53';
    const p = compileExpression(expr);
    const expected = packets.map((pk) => `${interpret(p, pk.data, pk.wirelen, pk.data.length)}\n`).join('');
    const progFile = join(dir, 'run.ddd');
    writeFileSync(progFile, formatProgram(p, 'ddd'));
    for (const engine of ['interpreter', 'compiled']) {
      expect((await exonet('bpf', 'run', '--pcap', pcap, '--engine', engine, expr)).out).toBe(expected);
      expect((await exonet('bpf', 'run', '--pcap', pcap, '--program', progFile, '--engine', engine)).out).toBe(
        expected,
      );
    }
    expect((await exonet('bpf', 'run', '--pcap', pcap, 'tcp', 'or', 'udp', 'port', '53')).out).toBe(expected);
  });

  it('uses the original length as wirelen and the captured length as buflen', async () => {
    const cut = [{ data: Uint8Array.from([1, 2, 3]), wirelen: 1500 }];
    const f = join(dir, 'cut.pcap');
    writeFileSync(f, writeCaptureFile(cut));
    expect((await exonet('bpf', 'run', '--pcap', f, 'len = 1500')).out).toBe('262144\n');
    expect((await exonet('bpf', 'run', '--pcap', f, 'ether[3] = 0')).out).toBe('0\n');
  });

  it('runs a program file over a capture of any link type; an expression only over Ethernet', async () => {
    const raw = [{ data: Uint8Array.from([0x45, 0, 0, 20]), wirelen: 20 }];
    const f = join(dir, 'raw-ip.pcap');
    writeFileSync(f, writeCaptureFile(raw, 101));
    const progFile = join(dir, 'first-byte.ddd');
    // ldb [0]; ret a
    writeFileSync(progFile, '2\n48 0 0 0\n22 0 0 0\n');
    expect((await exonet('bpf', 'run', '--pcap', f, '--program', progFile)).out).toBe('69\n');
    const r = await exonet('bpf', 'run', '--pcap', f, 'ip');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/link type 101 is not Ethernet/);
  });

  it.each([
    ['a bad engine', ['--engine', 'jit', 'ip'], /--engine/],
    ['no filter', [], /--program FILE or an expression/],
    ['a truncated pcap', ['ip'], /truncated/],
  ])('exits 1 on %s', async (name, extra, message) => {
    let file = pcap;
    if (name === 'a truncated pcap') {
      file = join(dir, 'trunc.pcap');
      writeFileSync(file, writeCaptureFile(packets).subarray(0, 100));
    }
    const r = await exonet('bpf', 'run', '--pcap', file, ...extra);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
  });
});

describe('against tcpdump itself', () => {
  // Filters whose program is instruction for instruction libpcap's optimised one: the output must be
  // byte for byte tcpdump's.
  const same = [
    'tcp dst port 80',
    'udp and dst host 10.0.0.2 and dst port 53',
    'tcp[tcpflags] & tcp-syn != 0',
    'vlan and ip6',
    'not arp',
    'host 10.0.0.1',
    'port 53',
    'icmp or arp',
    'ip6 multicast',
  ];
  it.each(same)('bpf compile -d/--dd/--ddd "%s" prints what tcpdump prints', async (expr) => {
    for (const [ours, theirs] of [
      ['-d', '-d'],
      ['--dd', '-dd'],
      ['--ddd', '-ddd'],
    ]) {
      const { stdout } = await promisify(execFile)('tcpdump', [theirs!, expr]);
      expect((await exonet('bpf', 'compile', ours!, expr)).out).toBe(stdout);
    }
  });
});

describe('the real exonet binary', () => {
  it('runs bpf compile end to end', async () => {
    const bin = new URL('../../cli/bin/exonet.js', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'bpf', 'compile', '--ddd', 'not arp']);
    expect(stdout).toBe(formatProgram(compileExpression('not arp'), 'ddd'));
  });
});
