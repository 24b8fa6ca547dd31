/**
 * Replaying captures of other link layers onto the NIC's Ethernet wire: Linux cooked v1/v2 (a real
 * `tcpdump -i any` capture among them) and raw IP, addressed as the capture says each packet arrived.
 */
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCaptureFile, writeCaptureFile } from '@exonet/bpf';
import { afterAll, describe, expect, it } from 'vitest';
import { createInThreadNic } from '../src/nic/in-thread.ts';
import { SYNTHETIC_SOURCE } from '../src/wire/link-framing.ts';
import type { PcapWire } from '../src/wire/pcap-wire.ts';
import { openWire } from '../src/wire/spec.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-framing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NIC = Uint8Array.of(0x00, 0xe0, 0x4c, 0x00, 0x00, 0x01);
const PEER = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A small IPv4/UDP packet to `dst` (checksums do not matter to the NIC). */
function ipv4(dst: number[], payload = 'hello'): number[] {
  const body = [...Buffer.from(payload)];
  const len = 28 + body.length;
  const header = [...Buffer.from('450000000000000040110000', 'hex'), 10, 0, 0, 1, ...dst];
  header[2] = len >> 8;
  header[3] = len & 0xff;
  return [...header, ...Buffer.from('30390035', 'hex'), 0, 8 + body.length, 0, 0, ...body];
}
/** An IPv6/UDP packet from ::1 to ff02::fb. */
const ipv6 = (): number[] => [
  ...Buffer.from(`6000000000081140${'00'.repeat(15)}01ff02${'00'.repeat(13)}fb3039003500080000`, 'hex'),
];

/** SLL v1: packet type, ARPHRD_ETHER, address length 6, the address (padded to 8), protocol. */
function sll(pkttype: number, protocol: number, payload: number[]): Uint8Array {
  return Uint8Array.from([0, pkttype, 0, 1, 0, 6, ...PEER, 0, 0, protocol >> 8, protocol & 0xff, ...payload]);
}
/** SLL v2: protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length 6, the address. */
function sll2(pkttype: number, protocol: number, payload: number[]): Uint8Array {
  return Uint8Array.from([
    protocol >> 8,
    protocol & 0xff,
    0,
    0,
    0,
    0,
    0,
    2,
    0,
    1,
    pkttype,
    6,
    ...PEER,
    0,
    0,
    ...payload,
  ]);
}

/** Replays a capture file into a NIC (promiscuous or not) and returns the frames it received. */
async function replay(file: string, promiscuous = false): Promise<{ frames: Uint8Array[]; skipped: number }> {
  const wire = (await openWire(`pcap:in=${file}`, { mac: NIC })) as PcapWire;
  const nic = createInThreadNic({ wire, mac: NIC });
  nic.driver.start();
  if (promiscuous) nic.driver.setReceiveFilter({ promiscuous: true });
  const frames: Uint8Array[] = [];
  while (!wire.done) {
    wire.pump(4);
    nic.driver.receive((f, n) => frames.push(f.slice(0, n)));
  }
  const skipped = wire.skipped;
  await nic.close();
  return { frames, skipped };
}

describe('captures of other link layers replayed onto Ethernet', () => {
  it.each([
    ['Linux cooked v1', 113, sll],
    ['Linux cooked v2', 276, sll2],
  ] as const)('%s: addressed by packet type, outgoing left out, other hosts not ours', async (_name, lt, make) => {
    const toUs = ipv4([10, 0, 0, 2]);
    const records = [
      make(0, 0x0800, toUs), // to us
      make(1, 0x0800, ipv4([255, 255, 255, 255])), // broadcast
      make(2, 0x0800, ipv4([224, 0, 0, 251])), // IPv4 multicast
      make(2, 0x86dd, ipv6()), // IPv6 multicast
      make(4, 0x0800, ipv4([10, 0, 0, 9])), // sent by the capturing host: never arrived
      make(3, 0x0800, ipv4([10, 0, 0, 7])), // for another host
      make(0, 0x0004, [0x42, 0x42, 0x03, ...new Array(40).fill(0)]), // 802.2 LLC (spanning tree)
    ];
    const file = join(dir, `cooked-${lt}.pcap`);
    writeFileSync(
      file,
      writeCaptureFile(
        records.map((data) => ({ data, wirelen: data.length })),
        lt,
      ),
    );
    const { frames, skipped } = await replay(file, true);
    expect(skipped).toBe(1);
    expect(frames.map((f) => hex(f.subarray(0, 14)))).toEqual([
      `${hex(NIC)}${hex(Uint8Array.from(PEER))}0800`,
      `ffffffffffff${hex(Uint8Array.from(PEER))}0800`,
      `01005e0000fb${hex(Uint8Array.from(PEER))}0800`,
      `3333000000fb${hex(Uint8Array.from(PEER))}86dd`,
      `0200000000fd${hex(Uint8Array.from(PEER))}0800`,
      `${hex(NIC)}${hex(Uint8Array.from(PEER))}002b`,
    ]);
    // The network-layer payload follows unchanged (the model pads short frames to 60 bytes).
    expect(hex(frames[0]!.subarray(14, 14 + toUs.length))).toBe(hex(Uint8Array.from(toUs)));
    // Not promiscuous: the NIC's own filter keeps the packet for another host out, as on the original wire
    // (and the multicast ones, which the driver has not subscribed to): to us, broadcast and the LLC frame.
    const strict = await replay(file, false);
    expect(strict.frames.map((f) => hex(f.subarray(0, 6)))).toEqual([hex(NIC), 'ffffffffffff', hex(NIC)]);
  });

  it('raw IP: IPv4 and IPv6 get their EtherType, to the NIC, from a made-up source; other versions are skipped', async () => {
    const file = join(dir, 'raw.pcap');
    const records = [Uint8Array.from(ipv4([10, 0, 0, 2])), Uint8Array.from(ipv6()), Uint8Array.of(0x50, 1, 2, 3)];
    writeFileSync(
      file,
      writeCaptureFile(
        records.map((data) => ({ data, wirelen: data.length })),
        101,
      ),
    );
    const { frames, skipped } = await replay(file, true);
    expect(skipped).toBe(1);
    expect(frames.map((f) => hex(f.subarray(0, 14)))).toEqual([
      `${hex(NIC)}${hex(SYNTHETIC_SOURCE)}0800`,
      `${hex(NIC)}${hex(SYNTHETIC_SOURCE)}86dd`,
    ]);
  });

  it('refuses a link type it cannot frame, naming the ones it can', async () => {
    const file = join(dir, 'wifi.pcap');
    writeFileSync(file, writeCaptureFile([{ data: new Uint8Array(40), wirelen: 40 }], 105));
    await expect(openWire(`pcap:in=${file}`, { mac: NIC })).rejects.toMatchObject({
      code: 'EXO_ERR_WIRE_PCAP',
      message: expect.stringMatching(/link type 105 cannot be replayed onto Ethernet \(known: 1 Ethernet, 113 /),
    });
  });

  it('replays a real `tcpdump -i any` capture: the datagrams that arrived, to the NIC', async () => {
    const file = join(dir, 'any.pcap');
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const tcpdump = spawn(
      'tcpdump',
      ['-i', 'any', '--immediate-mode', '-w', file, '-c', '6', '-U', `udp port ${port}`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    tcpdump.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    while (!err.includes('listening on')) await new Promise((r) => setTimeout(r, 20));
    const rx = createSocket('udp4');
    await new Promise<void>((r) => rx.bind(port, '127.0.0.1', () => r()));
    const tx = createSocket('udp4');
    const exited = new Promise((r) => tcpdump.once('exit', r));
    for (let i = 0; i < 20 && tcpdump.exitCode === null; i++) {
      tx.send(`datagram ${i}`, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Six captured packets end tcpdump; should some be lost, stop it after a while (it writes what it has).
    const stop = setTimeout(() => tcpdump.kill('SIGINT'), 5000);
    await exited;
    clearTimeout(stop);
    tx.close();
    rx.close();
    // Depending on the kernel, lo's datagrams are captured once (in) or twice (out, then in): what was
    // received is replayed, what was sent is left out, as tcpdump -r labels them.
    const capture = readCaptureFile(readFileSync(file));
    expect([113, 276]).toContain(capture.linktype);
    const { stdout } = await promisify(execFile)('tcpdump', ['-r', file, '-nn']);
    const lines = stdout.trim().split('\n');
    const incoming = lines.filter((l) => / In /.test(l)).length;
    const outgoing = lines.filter((l) => / Out /.test(l)).length;
    expect(incoming + outgoing).toBe(capture.packets.length);
    const { frames, skipped } = await replay(file);
    expect(frames.length).toBe(incoming);
    expect(skipped).toBe(outgoing);
    expect(frames.length).toBeGreaterThan(0);
    for (const f of frames) {
      expect(hex(f.subarray(0, 6))).toBe(hex(NIC));
      expect((f[12]! << 8) | f[13]!).toBe(0x0800);
      expect(Buffer.from(f.subarray(42, 42 + 9)).toString()).toBe('datagram ');
    }
  });
});
