import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultInjectorDevice } from '../src/driver/fault-injector.ts';
import { LoopbackDevice } from '../src/driver/loopback.ts';
import type { NetDevice } from '../src/driver/net-device.ts';
import { PcapTapDevice } from '../src/driver/pcap-tap.ts';
import { createInThreadNic } from '../src/nic/in-thread.ts';
import { Cable } from '../src/wire/cable.ts';
import { PcapReader, PcapWriter } from '../src/wire/pcap-file.ts';
import { frame, MAC, PEER } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-wrap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const seqOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(14);
const drain = (dev: NetDevice) => {
  const got: Uint8Array[] = [];
  while (dev.receive((f, n) => got.push(f.slice(0, n))) > 0);
  return got;
};

/** The same contract checks for every NetDevice: staged frames are invisible until committed, in order. */
function contract(make: () => { dev: NetDevice; peer: NetDevice; close(): Promise<void> }) {
  return async () => {
    const { dev, peer, close } = make();
    dev.start();
    if (peer !== dev) peer.start();
    const buf = dev.txAcquire()!;
    expect(dev.txAcquire()).toBe(buf); // one lent buffer at a time
    buf.set(frame(PEER, 80, 1, MAC));
    dev.txSubmit(80);
    expect(drain(peer)).toEqual([]);
    dev.txAcquire()!.set(frame(PEER, 80, 2, MAC));
    dev.txDiscard();
    dev.transmit(frame(PEER, 90, 3, MAC));
    expect(dev.txCommit()).toBe(2);
    dev.transmit(frame(PEER, 90, 4, MAC));
    expect(dev.txAbort()).toBe(1);
    dev.txCommit();
    expect(drain(peer).map(seqOf)).toEqual([1, 3]);
    expect(dev.counters().txPackets).toBe(2);
    expect(dev.counters().txDropped).toBe(1);
    await close();
  };
}

describe('NetDevice implementations honour the same contract', () => {
  it(
    'rtl8169 driver',
    contract(() => {
      const cable = new Cable();
      const a = createInThreadNic({ wire: cable.a, mac: MAC });
      const b = createInThreadNic({ wire: cable.b, mac: PEER });
      return {
        dev: a.driver,
        peer: b.driver,
        close: async () => {
          await a.close();
          await b.close();
        },
      };
    }),
  );
  it(
    'loopback device',
    contract(() => {
      const dev = new LoopbackDevice({ queueSize: 8 });
      return { dev, peer: dev, close: async () => dev.stop() };
    }),
  );
});

describe('wrapper devices', () => {
  it('loopback drops nothing within its queue and refuses buffers when full', () => {
    const dev = new LoopbackDevice({ queueSize: 3 });
    dev.start();
    for (let i = 0; i < 3; i++) expect(dev.transmit(frame(PEER, 60, i))).toBe(true);
    expect(dev.txAcquire()).toBeNull();
    dev.txCommit();
    expect(drain(dev).map(seqOf)).toEqual([0, 1, 2]);
    expect(dev.txAcquire()).not.toBeNull();
  });

  it('pcap tap writes committed TX frames and received frames, not discarded ones', async () => {
    const path = join(dir, 'tap.pcap');
    const writer = new PcapWriter(path);
    const dev = new PcapTapDevice(new LoopbackDevice(), writer);
    dev.start();
    dev.txAcquire()!.set(frame(PEER, 70, 1));
    dev.txSubmit(70);
    dev.txAcquire();
    dev.txDiscard();
    dev.transmit(frame(PEER, 71, 2));
    dev.txCommit();
    dev.transmit(frame(PEER, 72, 3));
    dev.txAbort();
    expect(drain(dev).map(seqOf)).toEqual([1, 2]);
    writer.close();
    const r = new PcapReader(readFileSync(path));
    const lengths: number[] = [];
    for (let rec = r.next(); rec; rec = r.next()) lengths.push(rec.data.length);
    expect(lengths).toEqual([70, 71, 70, 71]); // TX at commit, then RX
  });

  it('fault injector drops and corrupts reproducibly and leaves a clean device alone at rate 0', () => {
    const run = (seed: number) => {
      const dev = new FaultInjectorDevice(new LoopbackDevice({ queueSize: 256 }), {
        seed,
        rxDrop: 0.2,
        rxCorrupt: 0.2,
        txDrop: 0.1,
      });
      dev.start();
      for (let i = 0; i < 200; i++) {
        const buf = dev.txAcquire()!;
        buf.set(frame(PEER, 64, i));
        dev.txSubmit(64);
      }
      dev.txCommit();
      const got = drain(dev);
      return { got: got.map((f) => [...f]), injected: { ...dev.injected } };
    };
    const a = run(42);
    expect(run(42)).toEqual(a);
    expect(a.injected.rxDropped).toBeGreaterThan(0);
    expect(a.injected.rxCorrupted).toBeGreaterThan(0);
    expect(a.injected.txDropped).toBeGreaterThan(0);
    expect(a.got.length).toBe(200 - a.injected.txDropped - a.injected.rxDropped);

    const clean = new FaultInjectorDevice(new LoopbackDevice(), {});
    clean.start();
    clean.transmit(frame(PEER, 64, 9));
    clean.txCommit();
    expect(drain(clean)).toEqual([frame(PEER, 64, 9)]);
    expect(() => new FaultInjectorDevice(new LoopbackDevice(), { rxDrop: 2 })).toThrow(
      expect.objectContaining({ code: 'EXO_ERR_NIC_CONFIG' }),
    );
  });
});
