import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createInThreadNic } from '../src/nic/in-thread.ts';
import { PcapReader, PcapWriter } from '../src/wire/pcap-file.ts';
import { PcapWire } from '../src/wire/pcap-wire.ts';
import { openWire, parseWireSpec } from '../src/wire/spec.ts';
import { UdpWire } from '../src/wire/udp.ts';
import { frame, MAC, PEER } from './helpers.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'exonet-wire-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const seqOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(14);

describe('wire specifications', () => {
  it('parses every documented form', () => {
    expect(parseWireSpec('udp:5555:127.0.0.1:5556')).toEqual({
      kind: 'udp',
      localPort: 5555,
      remoteHost: '127.0.0.1',
      remotePort: 5556,
    });
    expect(parseWireSpec('udp:0:[::1]:7')).toMatchObject({ remoteHost: '::1', localPort: 0 });
    expect(parseWireSpec('udp:1:localhost:2')).toMatchObject({ remoteHost: 'localhost' });
    expect(parseWireSpec('pcap:in=a.pcap,out=b.pcap')).toEqual({ kind: 'pcap', input: 'a.pcap', output: 'b.pcap' });
    expect(parseWireSpec('pcap:out=b.pcap')).toEqual({ kind: 'pcap', input: undefined, output: 'b.pcap' });
    expect(parseWireSpec('gen:60')).toEqual({ kind: 'gen', frameSize: 60, count: undefined, pattern: 'sequenced' });
    expect(parseWireSpec('gen:1514:100:fixed')).toEqual({ kind: 'gen', frameSize: 1514, count: 100, pattern: 'fixed' });
    expect(parseWireSpec('gen:60::fixed')).toMatchObject({ count: undefined, pattern: 'fixed' });
    expect(parseWireSpec('loopback')).toEqual({ kind: 'loopback' });
    expect(parseWireSpec('null')).toEqual({ kind: 'null' });
  });

  const badSpecs = [
    '',
    'udp',
    'udp:abc',
    'udp:abc:127.0.0.1:1',
    'udp:1:127.0.0.1:abc',
    'udp:1:127.0.0.1:0',
    'udp:70000:127.0.0.1:1',
    'udp:1:127.0.0.1:99999',
    'udp:1::1:2',
    'udp:1:[zz]:2',
    'udp:1:bad host:2',
    'udp:1:127.0.0.1:2:3',
    'pcap:',
    'pcap:file.pcap',
    'pcap:in=',
    'pcap:in=a,in=b',
    'pcap:x=a',
    'gen:',
    'gen:10',
    'gen:99999',
    'gen:60:x',
    'gen:60:1:odd',
    'gen:60:1:fixed:more',
    'loopback:1',
    'sim',
    'tcp:1:2:3',
  ];
  for (const spec of badSpecs) {
    it(`rejects ${JSON.stringify(spec)} with EXO_ERR_WIRE_SPEC`, () => {
      expect(() => parseWireSpec(spec)).toThrow(expect.objectContaining({ code: 'EXO_ERR_WIRE_SPEC' }));
    });
  }
});

describe('pcap files', () => {
  it('writes what the NIC sends so that tcpdump reads it, and replays a capture into a NIC', async () => {
    const out = join(dir, 'sent.pcap');
    const tx = createInThreadNic({ wire: new PcapWire({ output: out }), mac: MAC });
    tx.driver.start();
    for (let i = 0; i < 5; i++) tx.driver.transmit(frame(PEER, 100 + i, i, MAC));
    tx.driver.txCommit();
    await tx.close();

    const { stdout } = await run('tcpdump', ['-r', out, '-n', '-e', '-c', '10']);
    // One summary line per frame (tcpdump adds hex lines for an unknown EtherType).
    const lines = stdout.split('\n').filter((l) => /^\d\d:\d\d:\d\d/.test(l));
    expect(lines.length).toBe(5);
    expect(lines[0]).toContain('00:e0:4c:00:00:01 > 02:00:00:00:00:02');
    expect(lines[0]).toContain('length 100');

    // Replay the same capture into a NIC whose address is the frames' destination.
    const wire = new PcapWire({ input: out });
    const rx = createInThreadNic({ wire, mac: PEER });
    rx.driver.start();
    const got: number[] = [];
    while (!wire.done) {
      wire.pump(2);
      rx.driver.receive((f) => got.push(seqOf(f)));
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await rx.close();
  });

  it('reads pcapng captures (section, interface and enhanced packet blocks)', () => {
    const frame = new Uint8Array(60).fill(0xab);
    const blocks: [number, number][] = [
      [0x0a0d0d0a, 16],
      [1, 8],
      [6, 20 + frame.length],
    ];
    const size = blocks.reduce((n, [, body]) => n + 12 + body, 0);
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    let at = 0;
    for (const [type, body] of blocks) {
      v.setUint32(at, type, true);
      v.setUint32(at + 4, 12 + body, true);
      v.setUint32(at + 8 + body, 12 + body, true);
      if (type === 0x0a0d0d0a) {
        v.setUint32(at + 8, 0x1a2b3c4d, true);
        v.setUint16(at + 12, 1, true);
      } else if (type === 1) v.setUint16(at + 8, 1, true);
      else {
        v.setUint32(at + 16, 7, true); // timestamp low word: 7 µs
        v.setUint32(at + 20, frame.length, true);
        v.setUint32(at + 24, frame.length, true);
        out.set(frame, at + 28);
      }
      at += 12 + body;
    }
    const r = new PcapReader(out);
    const rec = r.next();
    expect(rec?.timestampMicros).toBe(7);
    expect(rec?.data).toEqual(frame);
    expect(r.next()).toBeNull();
  });

  it('reads both byte orders and nanosecond captures', () => {
    for (const [le, magic] of [
      [true, 0xa1b2c3d4],
      [false, 0xa1b2c3d4],
      [true, 0xa1b23c4d],
    ] as const) {
      const b = new DataView(new ArrayBuffer(24 + 16 + 14));
      b.setUint32(0, magic, le);
      b.setUint16(4, 2, le);
      b.setUint16(6, 4, le);
      b.setUint32(16, 65535, le);
      b.setUint32(20, 1, le);
      b.setUint32(24, 10, le);
      b.setUint32(28, 5000, le);
      b.setUint32(32, 14, le);
      b.setUint32(36, 14, le);
      const r = new PcapReader(new Uint8Array(b.buffer));
      const rec = r.next();
      expect(rec?.data.length).toBe(14);
      expect(rec?.timestampMicros).toBe(magic === 0xa1b23c4d ? 10_000_005 : 10_005_000);
      expect(r.next()).toBeNull();
    }
  });

  const header = (link = 1) => {
    const b = new DataView(new ArrayBuffer(24));
    b.setUint32(0, 0xa1b2c3d4, true);
    b.setUint16(4, 2, true);
    b.setUint32(16, 65535, true);
    b.setUint32(20, link, true);
    return new Uint8Array(b.buffer);
  };
  const withRecord = (incl: number, actual: number) => {
    const f = new Uint8Array(24 + 16 + actual);
    f.set(header());
    new DataView(f.buffer).setUint32(32, incl, true);
    return f;
  };
  const badFiles: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['short header', new Uint8Array(10)],
    ['bad magic', new Uint8Array(24).fill(7)],
    ['not Ethernet', header(105)],
    ['truncated record header', Uint8Array.of(...header(), 1, 2, 3)],
    ['record longer than the file', withRecord(100, 10)],
    ['absurd record length', withRecord(0x7fffffff, 0)],
  ];
  for (const [what, bytes] of badFiles) {
    it(`rejects a capture with ${what} as EXO_ERR_WIRE_PCAP`, () => {
      expect(() => {
        const r = new PcapReader(bytes);
        while (r.next());
      }).toThrow(expect.objectContaining({ code: 'EXO_ERR_WIRE_PCAP' }));
    });
  }

  it('reports a missing or unreadable file as EXO_ERR_WIRE_IO', () => {
    expect(() => new PcapWire({ input: join(dir, 'missing.pcap') })).toThrow(
      expect.objectContaining({ code: 'EXO_ERR_WIRE_IO' }),
    );
    expect(() => new PcapWriter(join(dir, 'no-such-dir', 'x.pcap'))).toThrow(
      expect.objectContaining({ code: 'EXO_ERR_WIRE_IO' }),
    );
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, 'hello');
    // Both name the file.
    expect(() => new PcapWire({ input: junk })).toThrow(
      expect.objectContaining({ code: 'EXO_ERR_WIRE_PCAP', message: expect.stringContaining(`${junk}: `) }),
    );
    expect(() => new PcapWire({ input: join(dir, 'missing.pcap') })).toThrow(/cannot read .*missing\.pcap/);
  });
});

describe('UDP datagram tunnel', () => {
  it('carries frames between two NICs, one frame per datagram, and drops datagrams that cannot be frames', async () => {
    // Bind both ends on ephemeral ports first, then cross-connect them.
    const probeA = await UdpWire.open(0, '127.0.0.1', 9);
    const probeB = await UdpWire.open(0, '127.0.0.1', 9);
    const portA = probeA.localPort;
    const portB = probeB.localPort;
    await probeA.close();
    await probeB.close();
    const wa = await openWire(`udp:${portA}:127.0.0.1:${portB}`, { mac: MAC });
    const wb = (await openWire(`udp:${portB}:127.0.0.1:${portA}`, { mac: PEER })) as UdpWire;
    const a = createInThreadNic({ wire: wa, mac: MAC });
    const b = createInThreadNic({ wire: wb, mac: PEER });
    try {
      a.driver.start();
      b.driver.start();
      const got: number[] = [];
      const arrived = new Promise<void>((resolve) => {
        b.driver.setEventHandler(() => {
          b.driver.receive((f, n) => {
            if (n === 200) got.push(seqOf(f));
          });
          if (got.length === 3) resolve();
        });
      });
      // A datagram too short to be a frame, from the far end: dropped, counted.
      (wa as UdpWire).transmit(Uint8Array.of(1, 2, 3), 0, 3);
      for (let i = 0; i < 3; i++) a.driver.transmit(frame(PEER, 200, i, MAC));
      a.driver.txCommit();
      await arrived;
      expect(got).toEqual([0, 1, 2]);
      while (wb.dropped === 0) await new Promise((r) => setTimeout(r, 5));
      expect(wb.dropped).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('takes frames from its far end only: a datagram from anyone else never reaches the NIC', async () => {
    const probe = await UdpWire.open(0, '127.0.0.1', 9);
    const farPort = probe.localPort;
    await probe.close();
    const wire = await UdpWire.open(0, '127.0.0.1', farPort);
    const got: Uint8Array[] = [];
    wire.attach({ deliver: (f: Uint8Array) => got.push(f.slice()), setCarrier: () => {} } as never);
    const { createSocket } = await import('node:dgram');
    const send = (from: number, bytes: Uint8Array) =>
      new Promise<void>((resolve, reject) => {
        const s = createSocket('udp4');
        s.bind(from, '127.0.0.1', () =>
          s.send(bytes, wire.localPort, '127.0.0.1', (err) => {
            s.close();
            if (err) reject(err);
            else resolve();
          }),
        );
      });
    try {
      const stranger = new Uint8Array(64).fill(0xee);
      const far = new Uint8Array(64).fill(0xaa);
      await send(0, stranger);
      await send(farPort, far);
      while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      expect(got.map((f) => f[0])).toEqual([0xaa]);
    } finally {
      await wire.close();
    }
  });

  it('reports a far end it cannot resolve as EXO_ERR_WIRE_IO', async () => {
    await expect(UdpWire.open(0, 'no-such-host.invalid', 9)).rejects.toMatchObject({
      code: 'EXO_ERR_WIRE_IO',
      message: expect.stringMatching(/cannot reach no-such-host\.invalid:9/),
    });
  });

  it('reports a port it cannot bind as EXO_ERR_WIRE_IO', async () => {
    const w = await UdpWire.open(0, '127.0.0.1', 9);
    try {
      await expect(UdpWire.open(w.localPort, '127.0.0.1', 9)).rejects.toMatchObject({ code: 'EXO_ERR_WIRE_IO' });
    } finally {
      await w.close();
    }
  });
});
