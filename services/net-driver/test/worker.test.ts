import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeviceEvent } from '../src/driver/net-device.ts';
import { createInThreadNic } from '../src/nic/in-thread.ts';
import { createWorkerNic } from '../src/nic/worker-nic.ts';
import { checkFrame, writeSequencedFrame } from '../src/wire/generator.ts';
import { PcapWriter } from '../src/wire/pcap-file.ts';
import { UdpWire } from '../src/wire/udp.ts';
import { MAC, PEER } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('RTL8169 model in a worker thread, driver in this one', () => {
  it('receives heavy generated traffic: every frame delivered once, in order, untorn, or counted as missed', async () => {
    const total = 60_000;
    const nic = await createWorkerNic({ wire: `gen:300:${total}`, mac: MAC, rxRingSize: 61 });
    try {
      const { driver } = nic;
      driver.start();
      let expected = 0;
      let received = 0;
      let torn = 0;
      let outOfOrder = 0;
      const sink = (f: Uint8Array, n: number) => {
        const seq = checkFrame(f, n);
        if (seq < 0 || n !== 300) torn++;
        else if (seq < expected)
          outOfOrder++; // a duplicate or a reordering
        else expected = seq + 1;
        received++;
      };
      let events = 0;
      driver.setEventHandler(() => {
        events++;
      });
      // Flat out: the generator ignores the ring, so frames are both delivered and missed (RDU, MPC).
      nic.setPumping(true);
      let missed = 0;
      const giveUp = Date.now() + 45_000; // a bound on a hang, not a timing assertion
      for (let round = 0; received + missed < total; round++) {
        while (driver.receive(sink, 64) > 0);
        if (round % 64 === 0) missed = driver.counters().rxMissed;
        if (round % 1024 === 0) await tick();
        if (Date.now() > giveUp) throw new Error(`stuck: received ${received}, missed ${missed}`);
      }
      expect(torn).toBe(0);
      expect(outOfOrder).toBe(0);
      expect(received + missed).toBe(total);
      expect(received).toBeGreaterThan(0);
      expect(events).toBeGreaterThan(0);
      // Every sequence number the NIC did not count as missed arrived.
      expect(expected).toBeLessThanOrEqual(total);
    } finally {
      await nic.close();
    }
  });

  it('transmits and receives back through a loopback plug: nothing lost, duplicated or torn', async () => {
    const total = 20_000;
    const nic = await createWorkerNic({ wire: 'loopback', mac: MAC, rxRingSize: 64, txRingSize: 31 });
    try {
      const { driver } = nic;
      driver.start();
      const window = 48;
      let sent = 0;
      let expected = 0;
      let bad = 0;
      const sizeOf = (seq: number) => 60 + ((seq * 37) % 1400);
      const sink = (f: Uint8Array, n: number) => {
        const seq = checkFrame(f, n);
        if (seq !== expected || n !== sizeOf(seq)) bad++;
        expected = seq + 1;
      };
      while (expected < total) {
        let staged = 0;
        while (sent < total && sent - expected < window) {
          const buf = driver.txAcquire();
          if (!buf) break;
          driver.txSubmit(writeSequencedFrame(buf, MAC, MAC, sent, sizeOf(sent)));
          sent++;
          staged++;
        }
        if (staged) driver.txCommit();
        if (driver.receive(sink, 64) === 0) await tick();
      }
      expect(bad).toBe(0);
      const c = driver.counters();
      expect(c.rxMissed).toBe(0);
      expect(c.rxPackets).toBe(total);
      expect(nic.modelStats().txErrors).toBe(0);
      // The chip's tally counters, dumped by DMA through posted writes and a flushing read.
      expect(driver.hardwareCounters()).toMatchObject({ txPackets: total, rxPackets: total, rxMissed: 0 });
    } finally {
      await nic.close();
    }
  });

  it('replays a capture file into the NIC from the worker, with flow control: nothing missed', async () => {
    const path = join(dir, 'replay.pcap');
    const w = new PcapWriter(path);
    const buf = new Uint8Array(2000);
    for (let i = 0; i < 500; i++) w.write(buf, 0, writeSequencedFrame(buf, MAC, MAC, i, 60 + (i % 900)));
    w.close();
    const nic = await createWorkerNic({ wire: `pcap:in=${path}`, mac: MAC, rxRingSize: 16 });
    try {
      const { driver } = nic;
      driver.start();
      nic.setPumping('flow');
      const seqs: number[] = [];
      while (seqs.length < 500) {
        if (driver.receive((f, n) => seqs.push(checkFrame(f, n))) === 0) await tick();
      }
      expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => i));
    } finally {
      await nic.close();
    }
  });

  it('runs a UDP tunnel inside the worker (its event loop serves the socket) to a NIC in this thread', async () => {
    const peerWire = await UdpWire.open(0, '127.0.0.1', 9);
    const probe = await UdpWire.open(0, '127.0.0.1', 9);
    const workerPort = probe.localPort;
    await probe.close();
    await peerWire.close();
    const here = createInThreadNic({
      wire: await UdpWire.open(peerWire.localPort, '127.0.0.1', workerPort),
      mac: PEER,
    });
    const nic = await createWorkerNic({ wire: `udp:${workerPort}:127.0.0.1:${peerWire.localPort}`, mac: MAC });
    try {
      here.driver.start();
      nic.driver.start();
      const buf = new Uint8Array(300);
      // This thread -> worker model.
      for (let i = 0; i < 5; i++) here.driver.transmit(buf.subarray(0, writeSequencedFrame(buf, MAC, PEER, i, 300)));
      here.driver.txCommit();
      const got: number[] = [];
      while (got.length < 5) {
        if (nic.driver.receive((f, n) => got.push(checkFrame(f, n))) === 0) await tick();
      }
      expect(got).toEqual([0, 1, 2, 3, 4]);
      // Worker model -> this thread.
      for (let i = 10; i < 13; i++) nic.driver.transmit(buf.subarray(0, writeSequencedFrame(buf, PEER, MAC, i, 200)));
      nic.driver.txCommit();
      const back: number[] = [];
      while (back.length < 3) {
        if (here.driver.receive((f, n) => back.push(checkFrame(f, n))) === 0)
          await new Promise((r) => setTimeout(r, 2));
      }
      expect(back).toEqual([10, 11, 12]);
    } finally {
      await nic.close();
      await here.close();
    }
  });

  it('delivers link changes as interrupts to this thread', async () => {
    const nic = await createWorkerNic({ wire: 'null', mac: MAC });
    try {
      const { driver } = nic;
      const events: DeviceEvent[] = [];
      driver.setEventHandler((e) => {
        events.push(e);
        driver.receive(() => {}); // the poll unmasks
      });
      driver.start();
      expect(driver.link().up).toBe(true);
      events.length = 0;
      nic.setCarrier(false);
      while (driver.link().up) await tick();
      nic.setCarrier(true);
      while (!driver.link().up) await tick();
      expect(events.filter((e) => e === 'link').length).toBe(2);
    } finally {
      await nic.close();
    }
  });

  it('reports a wire the worker cannot open as a typed error', async () => {
    await expect(createWorkerNic({ wire: 'udp:abc' })).rejects.toMatchObject({ code: 'EXO_ERR_WIRE_SPEC' });
    await expect(createWorkerNic({ wire: 'pcap:in=/nonexistent/x.pcap' })).rejects.toMatchObject({
      code: 'EXO_ERR_NIC_WORKER',
    });
  });
});
