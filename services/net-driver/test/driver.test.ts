import { describe, expect, it } from 'vitest';
import type { DeviceEvent } from '../src/driver/net-device.ts';
import { createInThreadNic } from '../src/nic/in-thread.ts';
import * as R from '../src/nic/registers.ts';
import { Cable } from '../src/wire/cable.ts';
import { WIRE_FCS_BAD } from '../src/wire/wire.ts';
import { frame, MAC, PEER } from './helpers.ts';

/** Two NICs with their drivers, joined by a cable. */
function pair(opts: { rxRingSize?: number; txRingSize?: number; bufferSize?: number } = {}) {
  const cable = new Cable();
  const a = createInThreadNic({ ...opts, wire: cable.a, mac: MAC });
  const b = createInThreadNic({ ...opts, wire: cable.b, mac: PEER });
  a.driver.start();
  b.driver.start();
  return { cable, a, b };
}

function drain(dev: { receive(sink: (f: Uint8Array, n: number) => void, budget?: number): number }) {
  const got: Uint8Array[] = [];
  while (dev.receive((f, n) => got.push(f.slice(0, n)), 64) > 0);
  return got;
}

const seqOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(14);

describe('r8169 driver on the in-thread model', () => {
  it('brings the chip up in r8169 order and reads the MAC and link', async () => {
    const { a, b } = pair();
    expect(a.driver.macAddress()).toEqual(MAC);
    expect(a.driver.link()).toEqual({ up: true, speed: 1000, fullDuplex: true });
    expect(a.model.mmioRead(R.ChipCmd, 1)).toBe(R.CmdRxEnb | R.CmdTxEnb);
    expect(a.model.mmioRead(R.Cfg9346, 1)).toBe(R.Cfg9346_Lock);
    expect(a.model.mmioRead(R.IntrMask, 2)).not.toBe(0);
    await a.close();
    await b.close();
  });

  it('sends a batch with one doorbell and the peer receives every frame intact and in order', async () => {
    const { a, b } = pair();
    let doorbells = 0;
    const write8 = a.model.mmioWrite.bind(a.model);
    a.model.mmioWrite = (off, w, v) => {
      if (off === R.TxPoll && w === 1) doorbells++;
      write8(off, w, v);
    };
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const buf = a.driver.txAcquire();
      expect(buf).not.toBeNull();
      const f = frame(PEER, 60 + i * 30, i, MAC);
      buf!.set(f);
      a.driver.txSubmit(f.length);
      sent.push(f);
    }
    expect(b.model.stats.rxFrames).toBe(0); // staged: the NIC has not seen them
    expect(a.driver.txCommit()).toBe(40);
    expect(doorbells).toBe(1);
    expect(drain(b.driver)).toEqual(sent);
    a.driver.receive(() => {});
    expect(a.driver.counters()).toMatchObject({ txPackets: 40, txBytes: sent.reduce((s, f) => s + f.length, 0) });
    expect(b.driver.counters()).toMatchObject({ rxPackets: 40, rxErrors: 0, rxMissed: 0 });
    await a.close();
    await b.close();
  });

  it('never lets the NIC see a discarded or aborted frame', async () => {
    const { a, b } = pair();
    const buf = a.driver.txAcquire()!;
    buf.set(frame(PEER, 60, 1, MAC));
    a.driver.txDiscard();
    a.driver.transmit(frame(PEER, 60, 2, MAC));
    a.driver.txCommit();
    a.driver.transmit(frame(PEER, 60, 3, MAC));
    expect(a.driver.txAbort()).toBe(1);
    a.driver.txCommit();
    expect(drain(b.driver).map(seqOf)).toEqual([2]);
    expect(a.driver.counters().txDropped).toBe(1);
    await a.close();
    await b.close();
  });

  it('transmits a frame larger than one buffer over several descriptors; the receiver drops it as r8169 does', async () => {
    const { a, b } = pair({ bufferSize: 512 });
    const big = frame(PEER, 1200, 5, MAC);
    expect(a.driver.transmit(big)).toBe(true);
    a.driver.txCommit();
    expect(a.model.stats.txFrames).toBe(1);
    // 1204 bytes > RxMaxSize (512): the receiving MAC discards it.
    expect(b.model.stats.rxOversize).toBe(1);
    expect(drain(b.driver)).toEqual([]);
    await a.close();
    await b.close();
  });

  it('wraps rings of odd sizes many times', async () => {
    const { a, b } = pair({ rxRingSize: 5, txRingSize: 3 });
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      expect(a.driver.transmit(frame(PEER, 64, i, MAC))).toBe(true);
      a.driver.txCommit();
      b.driver.receive((f) => seen.push(seqOf(f)));
    }
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await a.close();
    await b.close();
  });

  it('survives RDU: frames beyond the ring are missed and counted, reception resumes after the poll', async () => {
    const { a, b } = pair({ rxRingSize: 8 });
    const events: DeviceEvent[] = [];
    b.driver.setEventHandler((e) => events.push(e));
    for (let i = 0; i < 20; i++) a.driver.transmit(frame(PEER, 64, i, MAC));
    a.driver.txCommit();
    await Promise.resolve(); // the interrupt (a microtask) runs
    expect(events).toContain('rx');
    expect(b.model.mmioRead(R.IntrMask, 2)).toBe(0); // masked until the poll
    expect(drain(b.driver).map(seqOf)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(b.model.mmioRead(R.IntrMask, 2)).not.toBe(0);
    expect(b.driver.counters()).toMatchObject({ rxMissed: 12, rxNoBufferEvents: 1 });
    for (let i = 20; i < 24; i++) a.driver.transmit(frame(PEER, 64, i, MAC));
    a.driver.txCommit();
    expect(drain(b.driver).map(seqOf)).toEqual([20, 21, 22, 23]);
    await a.close();
    await b.close();
  });

  it('counts error frames and drops them', async () => {
    const { a, b } = pair();
    // The driver does not set AcceptErr/AcceptRunt, so the MAC drops bad frames; let it accept them.
    b.model.mmioWrite(R.RxConfig, 4, b.model.mmioRead(R.RxConfig, 4) | R.AcceptErr | R.AcceptRunt);
    b.model.deliver(frame(PEER, 100, 1, MAC), WIRE_FCS_BAD);
    b.model.deliver(frame(PEER, 30, 2, MAC));
    b.model.deliver(frame(PEER, 100, 3, MAC));
    expect(drain(b.driver).map(seqOf)).toEqual([3]);
    expect(b.driver.counters()).toMatchObject({ rxErrors: 2, rxCrcErrors: 1, rxLengthErrors: 1, rxPackets: 1 });
    await a.close();
    await b.close();
  });

  it('follows link loss: no TX buffers while down, frames handed over meanwhile go out after link up', async () => {
    const { cable, a, b } = pair();
    const events: DeviceEvent[] = [];
    a.driver.setEventHandler((e) => events.push(e));
    a.driver.transmit(frame(PEER, 64, 1, MAC));
    cable.setPlugged(false);
    a.driver.txCommit(); // the NIC stalls: no link
    await Promise.resolve();
    expect(events).toContain('link');
    expect(a.driver.link().up).toBe(false);
    expect(a.driver.txAcquire()).toBeNull();
    a.driver.receive(() => {}); // the poll unmasks interrupts
    cable.setPlugged(true);
    await Promise.resolve();
    expect(a.driver.link().up).toBe(true);
    expect(drain(b.driver).map(seqOf)).toEqual([1]);
    expect(a.driver.counters().linkChanges).toBe(2);
    await a.close();
    await b.close();
  });

  it('resets on SYSErr and keeps working', async () => {
    const { a, b } = pair();
    const events: DeviceEvent[] = [];
    b.driver.setEventHandler((e) => events.push(e));
    // Corrupt the next RX descriptor's buffer address: the NIC reports SYSErr; the driver resets.
    const rdsar = b.model.mmioRead(R.RxDescAddrLow, 4);
    b.memory.view.setUint32(rdsar + 8, 0xfffff000, true);
    a.driver.transmit(frame(PEER, 64, 1, MAC));
    a.driver.txCommit();
    await Promise.resolve();
    expect(events).toContain('reset');
    expect(b.driver.counters().resets).toBe(1);
    a.driver.transmit(frame(PEER, 64, 2, MAC));
    a.driver.txCommit();
    expect(drain(b.driver).map(seqOf)).toEqual([2]);
    await a.close();
    await b.close();
  });

  it('accepts multicast groups through the hash filter and everything in promiscuous mode', async () => {
    const { a, b } = pair();
    const group = Uint8Array.of(0x01, 0x00, 0x5e, 0x01, 0x02, 0x03);
    const other = Uint8Array.of(0x02, 0x99, 0x99, 0x99, 0x99, 0x99);
    a.driver.transmit(frame(group, 64, 1, MAC));
    a.driver.transmit(frame(other, 64, 2, MAC));
    a.driver.txCommit();
    expect(drain(b.driver)).toEqual([]);
    b.driver.setReceiveFilter({ multicast: [group] });
    a.driver.transmit(frame(group, 64, 3, MAC));
    a.driver.txCommit();
    b.driver.setReceiveFilter({ promiscuous: true });
    a.driver.transmit(frame(other, 64, 4, MAC));
    a.driver.txCommit();
    expect(drain(b.driver).map(seqOf)).toEqual([3, 4]);
    expect(b.driver.counters().rxMulticast).toBe(1);
    await a.close();
    await b.close();
  });

  it('gives the descriptor back even when the sink throws', async () => {
    const { a, b } = pair({ rxRingSize: 4 });
    for (let i = 0; i < 3; i++) a.driver.transmit(frame(PEER, 64, i, MAC));
    a.driver.txCommit();
    expect(() =>
      b.driver.receive(() => {
        throw new Error('sink failed');
      }),
    ).toThrow('sink failed');
    expect(drain(b.driver).map(seqOf)).toEqual([1, 2]);
    for (let i = 3; i < 12; i++) a.driver.transmit(frame(PEER, 64, i, MAC));
    a.driver.txCommit();
    expect(drain(b.driver).map(seqOf)).toEqual([3, 4, 5, 6]); // the whole ring was available again
    await a.close();
    await b.close();
  });

  it('reads the chip tally counters through a CounterDump DMA, as r8169 does', async () => {
    const { a, b } = pair({ rxRingSize: 4 });
    expect(b.driver.hardwareCounters()).toMatchObject({ rxPackets: 0, txPackets: 0 });
    for (let i = 0; i < 6; i++) a.driver.transmit(frame(PEER, 64, i, MAC));
    a.driver.transmit(frame(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 64, 9, MAC));
    a.driver.txCommit();
    expect(a.driver.hardwareCounters()).toMatchObject({ txPackets: 7, txErrors: 0 });
    expect(b.driver.hardwareCounters()).toMatchObject({ rxPackets: 4, rxUnicast: 4, rxBroadcast: 0, rxMissed: 3 });
    drain(b.driver);
    b.model.mmioWrite(R.CounterAddrLow, 4, R.CounterReset);
    expect(b.driver.hardwareCounters()).toMatchObject({ rxPackets: 0, rxMissed: 0 });
    b.driver.stop();
    expect(b.driver.hardwareCounters()).toBeUndefined();
    await a.close();
    await b.close();
  });

  it('rejects bad options and bad frames with typed errors', () => {
    expect(() => createInThreadNic({ rxRingSize: 1 })).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_CONFIG' }));
    expect(() => createInThreadNic({ bufferSize: 100 })).toThrow(
      expect.objectContaining({ code: 'EXO_ERR_NIC_CONFIG' }),
    );
    expect(() => createInThreadNic({ mac: new Uint8Array(5) })).toThrow(
      expect.objectContaining({ code: 'EXO_ERR_NIC_CONFIG' }),
    );
    const { driver } = createInThreadNic({ wire: new Cable().a });
    driver.start();
    expect(() => driver.txSubmit(60)).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_STATE' }));
    driver.txAcquire();
    expect(() => driver.txSubmit(5)).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_FRAME' }));
    driver.txDiscard();
    expect(() => driver.transmit(new Uint8Array(3))).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_FRAME' }));
    driver.stop();
  });
});
