import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { multicastHashBit } from '../src/nic/crc32.ts';
import {
  DESC_SIZE,
  DescOwn,
  DescriptorView,
  emitRxDescriptor,
  emitTxDescriptor,
  FirstFrag,
  LastFrag,
  parseRxDescriptor,
  parseTxDescriptor,
  RingEnd,
  RxBAR,
  RxCRC,
  RxMAR,
  RxPAM,
  RxRES,
  RxRUNT,
} from '../src/nic/descriptor.ts';
import * as R from '../src/nic/registers.ts';
import { WIRE_FCS_BAD } from '../src/wire/wire.ts';
import { BROADCAST, bareModel, frame, MAC, PEER } from './helpers.ts';

/** Brings the RX side up by hand: ring, RxConfig accept bits, RxEnb. */
function rxSetup(accept: number, n = 4, size = 2048) {
  const m = bareModel();
  const ring = m.ring(n, size, true);
  m.io.write32(R.RxDescAddrHigh, 0);
  m.io.write32(R.RxDescAddrLow, ring.base);
  m.io.write16(R.RxMaxSize, 16383);
  m.io.write32(R.RxConfig, accept);
  m.io.write8(R.ChipCmd, R.CmdRxEnb);
  return { ...m, ...ring };
}

function txSetup(n: number, size = 2048) {
  const m = bareModel();
  const ring = m.ring(n, size, false);
  m.io.write32(R.TxDescStartAddrHigh, 0);
  m.io.write32(R.TxDescStartAddrLow, ring.base);
  m.io.write8(R.ChipCmd, R.CmdTxEnb);
  /** Fills descriptor i with bytes and opts1 (OWN optional). */
  const put = (i: number, bytes: Uint8Array, flags: number) => {
    m.memory.bytes.set(bytes, ring.bufs[i]);
    const eor = i === n - 1 ? RingEnd : 0;
    m.memory.view.setUint32(ring.base + i * DESC_SIZE, (flags | eor | bytes.length) >>> 0, true);
  };
  return { ...m, ...ring, put };
}

describe('RTL8169 model: register file', () => {
  it('powers on with the EEPROM MAC, everything masked, config locked, link from the PHY', () => {
    const m = bareModel();
    expect([0, 1, 2, 3, 4, 5].map((i) => m.io.read8(R.MAC0 + i))).toEqual([...MAC]);
    expect(m.io.read16(R.IntrMask)).toBe(0);
    expect(m.io.read16(R.IntrStatus)).toBe(0);
    expect(m.io.read8(R.Cfg9346)).toBe(R.Cfg9346_Lock);
    expect(m.io.read8(R.PHYstatus) & R.LinkStatus).toBe(R.LinkStatus);
    expect(m.io.read8(R.PHYstatus) & R._1000bpsF).toBe(R._1000bpsF);
    expect(m.io.read32(R.RxMissed)).toBe(0);
    const noLink = bareModel({ carrier: false });
    expect(noLink.io.read8(R.PHYstatus) & R.LinkStatus).toBe(0);
  });

  it('ignores writes to IDR0-5 while Cfg9346 is locked and takes them while unlocked', () => {
    const m = bareModel();
    m.io.write32(R.MAC0, 0x44332211);
    expect(m.io.read8(R.MAC0)).toBe(MAC[0]);
    m.io.write8(R.Cfg9346, R.Cfg9346_Unlock);
    m.io.write32(R.MAC0, 0x44332211);
    m.io.write16(R.MAC0 + 4, 0x6655);
    m.io.write8(R.Cfg9346, R.Cfg9346_Lock);
    expect([0, 1, 2, 3, 4, 5].map((i) => m.io.read8(R.MAC0 + i))).toEqual([0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
    m.io.write8(R.MAC0, 0x99);
    expect(m.io.read8(R.MAC0)).toBe(0x11);
  });

  it('locks Config0-5 like IDR, and only the 0xC0 pattern unlocks', () => {
    const m = bareModel();
    m.io.write8(R.Config0 + 2, 0x5a);
    expect(m.io.read8(R.Config0 + 2)).toBe(0);
    m.io.write8(R.Cfg9346, 0x80); // EEPROM programming mode, not config write enable
    m.io.write8(R.Config0 + 2, 0x5a);
    expect(m.io.read8(R.Config0 + 2)).toBe(0);
    m.io.write8(R.Cfg9346, R.Cfg9346_Unlock);
    m.io.write8(R.Config0 + 2, 0x5a);
    m.io.write8(R.Cfg9346, R.Cfg9346_Lock);
    expect(m.io.read8(R.Config0 + 2)).toBe(0x5a);
  });

  it('keeps plain registers as written and ignores writes to PHYstatus', () => {
    const m = bareModel();
    m.io.write16(R.IntrMask, 0x80ff);
    expect(m.io.read16(R.IntrMask)).toBe(0x80ff);
    m.io.write32(R.RxConfig, 0xe73f);
    expect(m.io.read32(R.RxConfig)).toBe(0xe73f);
    m.io.write16(R.RxMaxSize, 0x3fff);
    expect(m.io.read16(R.RxMaxSize)).toBe(0x3fff);
    const phy = m.io.read8(R.PHYstatus);
    m.io.write8(R.PHYstatus, 0);
    expect(m.io.read8(R.PHYstatus)).toBe(phy);
  });

  it('clears IntrStatus bits only where 1s are written, and asserts the line only for unmasked bits', () => {
    const m = bareModel();
    const before = m.irqs();
    m.io.write8(R.TxPoll, R.FSWInt);
    expect(m.io.read16(R.IntrStatus) & R.SWInt).toBe(R.SWInt);
    expect(m.irqs()).toBe(before); // masked
    m.io.write16(R.IntrStatus, 0);
    expect(m.io.read16(R.IntrStatus) & R.SWInt).toBe(R.SWInt);
    m.io.write16(R.IntrMask, R.SWInt);
    expect(m.irqs()).toBe(before + 1); // unmasking a pending event asserts the line
    m.io.write16(R.IntrStatus, R.SWInt);
    expect(m.io.read16(R.IntrStatus) & R.SWInt).toBe(0);
  });

  it('resets on CmdReset: the bit self-clears, engines, masks and RxConfig go to defaults, the MAC stays', () => {
    const m = bareModel();
    m.io.write8(R.Cfg9346, R.Cfg9346_Unlock);
    m.io.write8(R.MAC0, 0x42);
    m.io.write8(R.Cfg9346, R.Cfg9346_Lock);
    m.io.write16(R.IntrMask, 0xffff);
    m.io.write32(R.RxConfig, 0x3f);
    m.io.write8(R.ChipCmd, R.CmdRxEnb | R.CmdTxEnb);
    m.io.write8(R.TxPoll, R.FSWInt);
    m.io.write8(R.ChipCmd, R.CmdReset);
    expect(m.io.read8(R.ChipCmd)).toBe(0);
    expect(m.io.read16(R.IntrMask)).toBe(0);
    expect(m.io.read16(R.IntrStatus)).toBe(0);
    expect(m.io.read32(R.RxConfig)).toBe(0);
    expect(m.io.read8(R.MAC0)).toBe(0x42);
  });

  it('keeps the XID bits of TxConfig read-only', () => {
    const m = bareModel();
    const xid = m.io.read32(R.TxConfig) & R.TX_CONFIG_XID_MASK;
    m.io.write32(R.TxConfig, 0xffffffff);
    expect((m.io.read32(R.TxConfig) & R.TX_CONFIG_XID_MASK) >>> 0).toBe(xid >>> 0);
    expect(m.io.read32(R.TxConfig) & 0x0300).toBe(0x0300);
  });

  it('reports link changes in PHYstatus and with LinkChg', () => {
    const m = bareModel();
    m.io.write16(R.IntrMask, R.LinkChg);
    const before = m.irqs();
    m.model.setCarrier(false);
    expect(m.io.read8(R.PHYstatus) & R.LinkStatus).toBe(0);
    expect(m.io.read16(R.IntrStatus) & R.LinkChg).toBe(R.LinkChg);
    expect(m.irqs()).toBe(before + 1);
    m.io.write16(R.IntrStatus, R.LinkChg);
    m.model.setCarrier(true);
    expect(m.io.read8(R.PHYstatus) & R.LinkStatus).toBe(R.LinkStatus);
  });

  it('rejects unaligned and out-of-window accesses with EXO_ERR_NIC_REGISTER', () => {
    const m = bareModel();
    expect(() => m.io.read16(0x3d)).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_REGISTER' }));
    expect(() => m.io.write32(0x102, 0)).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_REGISTER' }));
    expect(() => m.io.read8(-1)).toThrow(expect.objectContaining({ code: 'EXO_ERR_NIC_REGISTER' }));
  });

  it('computes the multicast hash bit as r8169 does (ether_crc >> 26)', () => {
    for (const addr of [
      [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
      [0x33, 0x33, 0x00, 0x00, 0x00, 0x01],
      [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e],
    ]) {
      const a = Uint8Array.from(addr);
      // ether_crc = bitrev32(crc32_le(~0, a)) = bitrev32(~zlib_crc32(a)); independent of our table.
      const raw = ~zlibCrc32(a) >>> 0;
      let rev = 0;
      for (let i = 0; i < 32; i++) if (raw & (1 << i)) rev |= 1 << (31 - i);
      expect(multicastHashBit(a)).toBe(rev >>> 26);
    }
  });
});

describe('RTL8169 descriptors: view and representation', () => {
  it('emits and parses TX and RX descriptors field by field', () => {
    const m = bareModel();
    const addr = m.memory.alloc(32, 256);
    const tx = new DescriptorView(m.memory, addr);
    const txRepr = {
      own: true,
      endOfRing: true,
      firstSegment: true,
      lastSegment: false,
      length: 1234,
      bufferAddress: 0x12345678,
    };
    emitTxDescriptor(txRepr, tx);
    expect(tx.opts1 >>> 0).toBe((DescOwn | RingEnd | FirstFrag | 1234) >>> 0);
    expect(parseTxDescriptor(tx)).toEqual(txRepr);
    const rx = new DescriptorView(m.memory, addr + DESC_SIZE);
    emitRxDescriptor({ own: true, endOfRing: false, length: 2048, bufferAddress: 2 ** 33 + 8 }, rx);
    expect(rx.bufferAddress).toBe(2 ** 33 + 8);
    expect(parseRxDescriptor(rx)).toMatchObject({ own: true, length: 2048, error: false, vlanTag: undefined });
    // As the NIC returns a descriptor: status bits, length with FCS, a stripped VLAN tag (byte-swapped).
    rx.opts1 = FirstFrag | LastFrag | RxBAR | RxRES | RxCRC | 64;
    rx.opts2 = (1 << 16) | 0x3412;
    expect(parseRxDescriptor(rx)).toMatchObject({
      own: false,
      firstSegment: true,
      lastSegment: true,
      broadcast: true,
      error: true,
      crcError: true,
      runt: false,
      length: 64,
      vlanTag: 0x1234,
    });
  });
});

describe('RTL8169 model: receive', () => {
  it('DMAs an accepted frame with its FCS; length includes the FCS; status PAM/FS/LS; RxOK', () => {
    const m = rxSetup(R.AcceptMyPhys);
    const f = frame(MAC, 100, 7);
    m.model.deliver(f);
    const o1 = m.opts1(m.base);
    expect(o1 & DescOwn).toBe(0);
    expect(o1 & (FirstFrag | LastFrag)).toBe(FirstFrag | LastFrag);
    expect(o1 & RxPAM).toBe(RxPAM);
    expect(o1 & 0x3fff).toBe(104);
    expect(m.memory.bytes.slice(m.bufs[0], m.bufs[0] + 100)).toEqual(f);
    expect(m.memory.view.getUint32(m.bufs[0] + 100, true)).toBe(zlibCrc32(f));
    expect(m.io.read16(R.IntrStatus) & R.RxOK).toBe(R.RxOK);
  });

  it('filters on RxConfig: broadcast, my address, other addresses, multicast by hash, promiscuous', () => {
    const group = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0x01);
    const other = Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
    const cases: [number, Uint8Array, number | null][] = [
      [R.AcceptMyPhys, BROADCAST, null],
      [R.AcceptBroadcast, BROADCAST, RxBAR],
      [R.AcceptBroadcast, MAC, null],
      [R.AcceptMyPhys, MAC, RxPAM],
      [R.AcceptMyPhys | R.AcceptBroadcast | R.AcceptMulticast, other, null],
      [R.AcceptAllPhys, other, 0],
      [R.AcceptMulticast, group, null], // hash bit not set in MAR
      [R.AcceptAllPhys, group, RxMAR],
    ];
    for (const [accept, dst, expected] of cases) {
      const m = rxSetup(accept);
      m.model.deliver(frame(dst, 64));
      const o1 = m.opts1(m.base);
      if (expected === null) {
        expect(o1 & DescOwn, `accept ${accept} dst ${dst}`).not.toBe(0);
        expect(m.model.stats.rxFiltered).toBe(1);
      } else {
        expect(o1 & DescOwn).toBe(0);
        expect(o1 & (RxBAR | RxMAR | RxPAM)).toBe(expected);
      }
    }
    // Multicast with the hash bit set in MAR0..7.
    const m = rxSetup(R.AcceptMulticast);
    const bit = multicastHashBit(group);
    m.io.write8(R.MAR0 + (bit >> 3), 1 << (bit & 7));
    m.model.deliver(frame(group, 64));
    expect(m.opts1(m.base) & (DescOwn | RxMAR)).toBe(RxMAR);
  });

  it('drops a frame longer than RxMaxSize', () => {
    const m = rxSetup(R.AcceptMyPhys);
    m.io.write16(R.RxMaxSize, 1518);
    m.model.deliver(frame(MAC, 1514));
    expect(m.opts1(m.base) & DescOwn).toBe(0); // 1514 + 4 = 1518 fits
    m.model.deliver(frame(MAC, 1515));
    expect(m.opts1(m.base + DESC_SIZE) & DescOwn).not.toBe(0);
    expect(m.model.stats.rxOversize).toBe(1);
  });

  it('passes runts and CRC errors only with AcceptRunt / AcceptErr, flagged RES and raising RxErr', () => {
    const drop = rxSetup(R.AcceptMyPhys);
    drop.model.deliver(frame(MAC, 40));
    drop.model.deliver(frame(MAC, 80), WIRE_FCS_BAD);
    expect(drop.model.stats.rxErrorsDropped).toBe(2);
    expect(drop.opts1(drop.base) & DescOwn).not.toBe(0);

    const keep = rxSetup(R.AcceptMyPhys | R.AcceptRunt | R.AcceptErr);
    keep.model.deliver(frame(MAC, 40));
    const runt = keep.opts1(keep.base);
    expect(runt & (DescOwn | RxRES | RxRUNT)).toBe(RxRES | RxRUNT);
    expect(runt & 0x3fff).toBe(44);
    const f = frame(MAC, 80);
    keep.model.deliver(f, WIRE_FCS_BAD);
    const crc = keep.opts1(keep.base + DESC_SIZE);
    expect(crc & (DescOwn | RxRES | RxCRC)).toBe(RxRES | RxCRC);
    expect(keep.memory.view.getUint32(keep.bufs[1] + 80, true)).not.toBe(zlibCrc32(f));
    expect(keep.io.read16(R.IntrStatus) & R.RxErr).toBe(R.RxErr);
  });

  it('raises RDU and counts a missed packet when no descriptor is free; MPC clears on write', () => {
    const m = rxSetup(R.AcceptMyPhys, 2);
    m.model.deliver(frame(MAC, 60, 1));
    m.model.deliver(frame(MAC, 60, 2));
    expect(m.io.read16(R.IntrStatus) & R.RxDescUnavail).toBe(0);
    m.model.deliver(frame(MAC, 60, 3));
    m.model.deliver(frame(MAC, 60, 4));
    expect(m.io.read32(R.RxMissed)).toBe(2);
    expect(m.io.read16(R.IntrStatus) & R.RxDescUnavail).toBe(R.RxDescUnavail);
    m.io.write32(R.RxMissed, 0);
    expect(m.io.read32(R.RxMissed)).toBe(0);
    // Give descriptor 0 back: the NIC resumes there (its index wrapped at EOR).
    m.memory.view.setUint32(m.base, (DescOwn | 2048) >>> 0, true);
    m.model.deliver(frame(MAC, 60, 5));
    expect(m.opts1(m.base) & DescOwn).toBe(0);
    expect(m.memory.view.getUint32(m.bufs[0] + 14)).toBe(5);
  });

  it('spreads a frame larger than one buffer over descriptors: FS on the first, LS and total length on the last', () => {
    const m = rxSetup(R.AcceptMyPhys, 4, 256);
    const f = frame(MAC, 600);
    m.model.deliver(f);
    const o = [0, 1, 2].map((i) => m.opts1(m.base + i * DESC_SIZE));
    expect(o.map((x) => x & DescOwn)).toEqual([0, 0, 0]);
    expect(o[0] & (FirstFrag | LastFrag)).toBe(FirstFrag);
    expect(o[1] & (FirstFrag | LastFrag)).toBe(0);
    expect(o[2] & (FirstFrag | LastFrag)).toBe(LastFrag);
    expect(o[2] & 0x3fff).toBe(604);
    const got = new Uint8Array(604);
    got.set(m.memory.bytes.subarray(m.bufs[0], m.bufs[0] + 256), 0);
    got.set(m.memory.bytes.subarray(m.bufs[1], m.bufs[1] + 256), 256);
    got.set(m.memory.bytes.subarray(m.bufs[2], m.bufs[2] + 92), 512);
    expect(got.subarray(0, 600)).toEqual(f);
    expect(new DataView(got.buffer).getUint32(600, true)).toBe(zlibCrc32(f));
  });

  it('misses a multi-descriptor frame when not enough descriptors are owned, without touching any', () => {
    const m = rxSetup(R.AcceptMyPhys, 2, 256);
    m.model.deliver(frame(MAC, 600));
    expect(m.io.read32(R.RxMissed)).toBe(1);
    expect(m.opts1(m.base) & DescOwn).not.toBe(0);
  });

  it('restarts at the ring base when RxDescAddrLow is written', () => {
    const m = rxSetup(R.AcceptMyPhys, 4);
    m.model.deliver(frame(MAC, 60, 1));
    m.memory.view.setUint32(m.base, (DescOwn | 2048) >>> 0, true);
    m.io.write32(R.RxDescAddrLow, m.base);
    m.model.deliver(frame(MAC, 60, 2));
    expect(m.memory.view.getUint32(m.bufs[0] + 14)).toBe(2);
  });

  it('drops frames while RxEnb is clear or the link is down', () => {
    const m = rxSetup(R.AcceptMyPhys);
    m.io.write8(R.ChipCmd, 0);
    m.model.deliver(frame(MAC));
    m.io.write8(R.ChipCmd, R.CmdRxEnb);
    m.model.setCarrier(false);
    m.model.deliver(frame(MAC));
    expect(m.model.stats.rxDisabled).toBe(2);
    expect(m.opts1(m.base) & DescOwn).not.toBe(0);
  });

  it('reports SYSErr for a descriptor whose buffer lies outside physical memory, and does not crash', () => {
    const m = rxSetup(R.AcceptMyPhys);
    m.memory.view.setUint32(m.base + 8, 0xfffff000, true);
    m.model.deliver(frame(MAC));
    expect(m.io.read16(R.IntrStatus) & R.SYSErr).toBe(R.SYSErr);
    expect(m.model.stats.dmaErrors).toBe(1);
  });

  for (const n of [3, 5, 7]) {
    it(`wraps an RX ring of ${n} descriptors at EOR`, () => {
      const m = rxSetup(R.AcceptMyPhys, n, 128);
      for (let seq = 0; seq < n * 4 + 1; seq++) {
        m.model.deliver(frame(MAC, 60, seq));
        const slot = seq % n;
        const d = m.base + slot * DESC_SIZE;
        const o1 = m.opts1(d);
        expect(o1 & DescOwn).toBe(0);
        expect(o1 & RingEnd).toBe(slot === n - 1 ? RingEnd : 0);
        expect(m.memory.view.getUint32(m.bufs[slot] + 14)).toBe(seq);
        // The driver gives it back at once.
        m.memory.view.setUint32(d, (DescOwn | (o1 & RingEnd) | 128) >>> 0, true);
      }
      expect(m.io.read32(R.RxMissed)).toBe(0);
    });
  }
});

describe('RTL8169 model: transmit', () => {
  it('sends owned descriptors on NPQ, clears OWN, raises TxOK, and stops at the first one not owned', () => {
    const m = txSetup(4);
    m.put(0, frame(PEER, 60, 0), DescOwn | FirstFrag | LastFrag);
    m.put(1, frame(PEER, 60, 1), FirstFrag | LastFrag); // not handed over
    m.put(2, frame(PEER, 60, 2), DescOwn | FirstFrag | LastFrag);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.length).toBe(1);
    expect(m.opts1(m.base) & DescOwn).toBe(0);
    expect(m.io.read16(R.IntrStatus) & R.TxOK).toBe(R.TxOK);
    // Handing descriptor 1 over is not enough: the NIC looks again only after the next TxPoll.
    m.memory.view.setUint32(m.base + DESC_SIZE, (m.opts1(m.base + DESC_SIZE) | DescOwn) >>> 0, true);
    expect(m.transmitted.length).toBe(1);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.map((f) => new DataView(f.buffer).getUint32(14))).toEqual([0, 1, 2]);
  });

  it('ignores a high-priority poll (HPQ): the model has only the normal-priority queue', () => {
    const m = txSetup(2);
    m.put(0, frame(PEER), DescOwn | FirstFrag | LastFrag);
    m.io.write8(R.TxPoll, R.HPQ);
    expect(m.transmitted.length).toBe(0);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.length).toBe(1);
  });

  it('does not transmit while TxEnb is clear or the link is down', () => {
    const m = txSetup(2);
    m.put(0, frame(PEER), DescOwn | FirstFrag | LastFrag);
    m.io.write8(R.ChipCmd, 0);
    m.io.write8(R.TxPoll, R.NPQ);
    m.io.write8(R.ChipCmd, R.CmdTxEnb);
    m.model.setCarrier(false);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.length).toBe(0);
    m.model.setCarrier(true);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.length).toBe(1);
  });

  it('joins a frame over several descriptors and pads short frames to 60 bytes', () => {
    const m = txSetup(4);
    const f = frame(PEER, 300, 9);
    m.put(0, f.subarray(0, 100), DescOwn | FirstFrag);
    m.put(1, f.subarray(100, 200), DescOwn);
    m.put(2, f.subarray(200), DescOwn | LastFrag);
    m.put(3, frame(PEER, 20, 1), DescOwn | FirstFrag | LastFrag);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted[0]).toEqual(f);
    expect(m.transmitted[1].length).toBe(60);
    expect(m.transmitted[1].subarray(20)).toEqual(new Uint8Array(40));
    for (let i = 0; i < 4; i++) expect(m.opts1(m.base + i * DESC_SIZE) & DescOwn).toBe(0);
  });

  it('waits for every fragment of a frame to be owned before sending it', () => {
    const m = txSetup(4);
    const f = frame(PEER, 200);
    m.put(0, f.subarray(0, 100), DescOwn | FirstFrag);
    m.put(1, f.subarray(100), LastFrag);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.length).toBe(0);
    expect(m.opts1(m.base) & DescOwn).not.toBe(0);
    m.memory.view.setUint32(m.base + DESC_SIZE, (m.opts1(m.base + DESC_SIZE) | DescOwn) >>> 0, true);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted[0]).toEqual(f);
  });

  it('consumes malformed descriptors with TxErr (no FS, zero length) and DMA errors with SYSErr', () => {
    const m = txSetup(4);
    m.put(0, frame(PEER), DescOwn | LastFrag); // no FS
    m.put(1, new Uint8Array(0), DescOwn | FirstFrag | LastFrag);
    m.put(2, frame(PEER), DescOwn | FirstFrag | LastFrag);
    m.memory.view.setUint32(m.base + 2 * DESC_SIZE + 8, 0xffff0000, true);
    m.put(3, frame(PEER, 64, 3), DescOwn | FirstFrag | LastFrag);
    m.io.write8(R.TxPoll, R.NPQ);
    expect(m.transmitted.length).toBe(1);
    expect(m.io.read16(R.IntrStatus) & (R.TxErr | R.SYSErr | R.TxOK)).toBe(R.TxErr | R.SYSErr | R.TxOK);
    expect(m.model.stats.txErrors).toBe(3);
  });

  for (const n of [3, 5, 7]) {
    it(`wraps a TX ring of ${n} descriptors at EOR`, () => {
      const m = txSetup(n, 128);
      for (let seq = 0; seq < n * 3 + 2; seq++) {
        m.put(seq % n, frame(PEER, 64, seq), DescOwn | FirstFrag | LastFrag);
        m.io.write8(R.TxPoll, R.NPQ);
      }
      expect(m.transmitted.map((f) => new DataView(f.buffer).getUint32(14))).toEqual(
        Array.from({ length: n * 3 + 2 }, (_, i) => i),
      );
    });
  }
});
