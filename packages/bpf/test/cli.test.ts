import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { type Frame, packetSet } from '../src/bench/packets.ts';
import { writeCaptureFile } from '../src/capture-file.ts';
import { registerCommands } from '../src/cli.ts';
import { compileExpression, encodeProgram, formatProgram, interpret } from '../src/index.ts';
import { reframe, sll2Header, sllHeader } from './_link-frames.ts';

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

  it("runs a program file over a capture of any link type; an expression for the capture's link type", async () => {
    const raw = [{ data: Uint8Array.from([0x45, 0, 0, 20]), wirelen: 20 }];
    const f = join(dir, 'raw-ip.pcap');
    writeFileSync(f, writeCaptureFile(raw, 101));
    const progFile = join(dir, 'first-byte.ddd');
    // ldb [0]; ret a
    writeFileSync(progFile, '2\n48 0 0 0\n22 0 0 0\n');
    expect((await exonet('bpf', 'run', '--pcap', f, '--program', progFile)).out).toBe('69\n');
    expect((await exonet('bpf', 'run', '--pcap', f, 'ip')).out).toBe('262144\n');
    expect((await exonet('bpf', 'run', '--pcap', f, 'ip6')).out).toBe('0\n');
    const wifi = join(dir, 'wifi.pcap');
    writeFileSync(wifi, writeCaptureFile(raw, 105));
    const r = await exonet('bpf', 'run', '--pcap', wifi, 'ip');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/link type 105 is not one expressions compile for/);
    expect((await exonet('bpf', 'run', '--pcap', wifi, '--program', progFile)).out).toBe('69\n');
  });

  it('compiles for the link type -y names, and refuses an unknown one', async () => {
    expect((await exonet('bpf', 'compile', '-y', 'LINUX_SLL', 'ip')).out).toBe(
      formatProgram(compileExpression('ip', { link: 'linux-sll' }), 'd'),
    );
    expect((await exonet('bpf', 'compile', '--linktype', '276', '--ddd', 'arp')).out).toBe(
      formatProgram(compileExpression('arp', { link: 'linux-sll2' }), 'ddd'),
    );
    const r = await exonet('bpf', 'compile', '-y', 'IEEE802_11', 'ip');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--linktype: "IEEE802_11" is not one of/);
    const v = await exonet('bpf', 'compile', '-y', 'RAW', 'vlan');
    expect(v.code).toBe(1);
    expect(v.err).toMatch(/no VLAN support for Raw IP/);
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

describe('bpf run against tcpdump -r on captures of other link types', () => {
  const ethernet = packetSet(300, 11);
  // tcpdump prints nothing for a record with no captured bytes ("Invalid header: caplen==0"), filter or not:
  // those are left out.
  const captured = (frames: Frame[]) => frames.filter((f) => f.data.length > 0);
  const captures = [
    { linktype: 113, frames: captured(ethernet.map((f, i) => reframe(f, sllHeader(f.data, i % 3)))) },
    { linktype: 276, frames: captured(ethernet.map((f, i) => reframe(f, sll2Header(f.data, i % 3)))) },
    { linktype: 101, frames: captured(ethernet.map((f) => reframe(f, new Uint8Array(0)))) },
  ];
  const exprs = [
    'ip',
    'udp port 53',
    'tcp[tcpflags] & tcp-syn != 0',
    'arp or ip6',
    'host 10.0.0.1',
    'less 80',
    'inbound',
    'ip and outbound',
  ];
  it.each(captures)('link type $linktype: the same packets match as with tcpdump', async ({ linktype, frames }) => {
    const f = join(dir, `link-${linktype}.pcap`);
    writeFileSync(f, writeCaptureFile(frames, linktype));
    for (const expr of exprs) {
      if (linktype === 101 && /bound/.test(expr)) {
        // Raw IP records carry no direction: tcpdump -r refuses the filter, and so do we.
        await expect(promisify(execFile)('tcpdump', ['-r', f, expr])).rejects.toThrow(
          /inbound\/outbound not supported/,
        );
        const refused = await exonet('bpf', 'run', '--pcap', f, expr);
        expect(refused.code).toBe(1);
        expect(refused.err).toMatch(/inbound\/outbound not supported on Raw IP/);
        continue;
      }
      const ours = (await exonet('bpf', 'run', '--pcap', f, expr)).out
        .trim()
        .split('\n')
        .flatMap((v, i) => (v !== '0' ? [i + 1] : []));
      // writeCaptureFile stamps packet i at 1,700,000,000 + i seconds: tcpdump -tt names each packet it
      // printed (the ones the filter accepted) by that time.
      const { stdout } = await promisify(execFile)('tcpdump', ['-tt', '-nn', '-r', f, expr], { maxBuffer: 1 << 26 });
      const theirs = stdout
        .split('\n')
        .map((l) => /^(\d+)\.000000 /.exec(l)?.[1])
        .filter((n): n is string => n !== undefined)
        .map((t) => Number(t) - 1_700_000_000 + 1);
      expect(ours, `${linktype} ${expr}`).toEqual(theirs);
      expect(ours.length, `${linktype} ${expr}: some packets match`).toBeGreaterThan(0);
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
