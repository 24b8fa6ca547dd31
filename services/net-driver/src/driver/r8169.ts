import { NicError } from '../errors.ts';
import { multicastHashBit } from '../nic/crc32.ts';
import {
  DESC_SIZE,
  DescOwn,
  FirstFrag,
  LastFrag,
  RING_ALIGN,
  RingEnd,
  RX_LENGTH_MASK,
  RxCRC,
  RxMAR,
  RxRES,
  RxRUNT,
  RxRWT,
} from '../nic/descriptor.ts';
import type { Mmio } from '../nic/mmio.ts';
import type { PhysicalMemory } from '../nic/physical-memory.ts';
import * as R from '../nic/registers.ts';
import { TALLY_LAYOUT, type TallyCounters } from '../nic/rtl8169.ts';
import type { InterruptLine } from './interrupt-line.ts';
import {
  type DeviceCapabilities,
  type DeviceCounters,
  type DeviceEvent,
  type LinkState,
  type NetDevice,
  type RxSink,
  zeroCounters,
} from './net-device.ts';

/** Options of {@link Rtl8169Driver}. */
export interface Rtl8169DriverOptions {
  /** The chip's register window. */
  readonly mmio: Mmio;
  /** Physical memory the driver allocates its rings and buffers in (once, at construction). */
  readonly memory: PhysicalMemory;
  /** The chip's interrupt line. */
  readonly irq: InterruptLine;
  /** RX descriptors (2..1024, default 256 as in r8169). */
  readonly rxRingSize?: number;
  /** TX descriptors (2..1024, default 256). */
  readonly txRingSize?: number;
  /**
   * Bytes per RX and TX buffer (64..16383, multiple of 8, default 2048). r8169 uses 16 KiB - 1 RX buffers;
   * 2 KiB holds any standard frame with FCS and keeps physical memory small. RxMaxSize is set to it, so a
   * frame never spans two RX descriptors unless the wire delivers more than the MAC should accept.
   */
  readonly bufferSize?: number;
  /** Device name for logs. */
  readonly name?: string;
}

/** The interrupts r8169 enables (rtl8169 default irq_mask): everything but TxDescUnavail and SWInt. */
const IRQ_MASK = R.SYSErr | R.LinkChg | R.RxOverflow | R.RxFIFOOver | R.TxErr | R.TxOK | R.RxErr | R.RxOK;
/** How many times to poll ChipCmd for the end of a reset (r8169's rtl_chipcmd_cond: 100 x 100 us). */
const RESET_POLLS = 100;
/** Largest frame transmit() takes: 16 KiB - 1 (the 8169's largest frame) less the FCS the NIC appends. */
const MAX_TX_FRAME = 16383 - 4;

function checkRingSize(what: string, n: number | undefined, dflt: number): number {
  const v = n ?? dflt;
  if (!Number.isInteger(v) || v < 2 || v > 1024) {
    throw new NicError('EXO_ERR_NIC_CONFIG', `expected ${what} between 2 and 1024 descriptors, got ${v}`);
  }
  return v;
}

/**
 * An r8169-style driver for the RTL8169 (Linux drivers/net/ethernet/realtek/r8169_main.c, reduced to the
 * 8169's essentials). It touches the chip only through its registers ({@link Mmio}) and the descriptors in
 * physical memory, so it drives the model in the same thread or in a worker thread alike.
 */
export class Rtl8169Driver implements NetDevice {
  readonly name: string;
  readonly capabilities: DeviceCapabilities;
  private readonly mmio: Mmio;
  private readonly memory: PhysicalMemory;
  private readonly words: Int32Array;
  private readonly irq: InterruptLine;
  private readonly rxSize: number;
  private readonly txSize: number;
  private readonly bufSize: number;
  /** Physical addresses of the rings and of each slot's buffer. */
  private readonly rxRing: number;
  private readonly txRing: number;
  private readonly rxBufAddr: Float64Array;
  private readonly txBufAddr: Float64Array;
  /** Each slot's buffer as a view, made once: lending them costs no allocation. */
  private readonly rxViews: Uint8Array[];
  private readonly txViews: Uint8Array[];
  /** Length of the frame (segment) staged or in flight in each TX slot, and its opts1 to commit. */
  /** 64-byte-aligned area the chip dumps its tally counters into. */
  private readonly tallyAddr: number;
  private readonly txLen: Int32Array;
  private readonly txOpts: Int32Array;
  /** RX: next slot to look at. TX: cur = next slot to hand over, dirty = oldest not yet completed (both
   *  count up without wrapping; slot = n % size). staged = frames staged after cur, stagedSlots their slots. */
  private rxCur = 0;
  private txCur = 0;
  private txDirty = 0;
  private stagedSlots = 0;
  private stagedFrames = 0;
  private lent = false;
  private carrier = false;
  private phy = 0;
  private started = false;
  private gone = false;
  /** Interrupts are masked and the poll (receive) is due to unmask them: NAPI's "scheduled" state. */
  private napiScheduled = false;
  /** MPC at the last read. */
  private lastMpc = 0;
  private readonly stats: DeviceCounters = zeroCounters();
  private mac = new Uint8Array(6);
  private eventHandler: ((event: DeviceEvent) => void) | null = null;
  private rxMode: { promiscuous: boolean; allMulticast: boolean; mar: Uint8Array } = {
    promiscuous: false,
    allMulticast: false,
    mar: new Uint8Array(8),
  };

  constructor(options: Rtl8169DriverOptions) {
    this.mmio = options.mmio;
    this.memory = options.memory;
    this.words = options.memory.words;
    this.irq = options.irq;
    this.name = options.name ?? 'rtl8169';
    this.rxSize = checkRingSize('rxRingSize', options.rxRingSize, 256);
    this.txSize = checkRingSize('txRingSize', options.txRingSize, 256);
    const buf = options.bufferSize ?? 2048;
    if (!Number.isInteger(buf) || buf < 64 || buf > RX_LENGTH_MASK || buf % 8) {
      throw new NicError('EXO_ERR_NIC_CONFIG', `expected bufferSize a multiple of 8 between 64 and 16376, got ${buf}`);
    }
    this.bufSize = buf;
    // Probe-time allocations (rtl8169_open: the rings; rtl8169_rx_fill: the buffers).
    this.rxRing = this.memory.alloc(this.rxSize * DESC_SIZE, RING_ALIGN);
    this.txRing = this.memory.alloc(this.txSize * DESC_SIZE, RING_ALIGN);
    this.rxBufAddr = new Float64Array(this.rxSize);
    this.txBufAddr = new Float64Array(this.txSize);
    this.rxViews = [];
    this.txViews = [];
    for (let i = 0; i < this.rxSize; i++) {
      const a = this.memory.alloc(buf, 8);
      this.rxBufAddr[i] = a;
      this.rxViews.push(new Uint8Array(this.memory.buffer, a, buf));
    }
    for (let i = 0; i < this.txSize; i++) {
      const a = this.memory.alloc(buf, 8);
      this.txBufAddr[i] = a;
      this.txViews.push(new Uint8Array(this.memory.buffer, a, buf));
    }
    this.tallyAddr = this.memory.alloc(R.TALLY_SIZE, 64);
    this.txLen = new Int32Array(this.txSize);
    this.txOpts = new Int32Array(this.txSize);
    this.capabilities = {
      // The buffer holds the frame and its 4-byte FCS.
      maxFrameSize: buf - 4,
      txBufferSize: buf,
      txQueueSize: this.txSize,
      rxQueueSize: this.rxSize,
    };
    // rtl_init_one: the MAC the chip loaded from its EEPROM.
    for (let i = 0; i < 6; i++) this.mac[i] = this.mmio.read8(R.MAC0 + i);
    this.irq.setHandler(() => this.interrupt());
  }

  get running(): boolean {
    return this.started;
  }

  macAddress(): Uint8Array {
    return Uint8Array.from(this.mac);
  }

  /** Programs a new station address (rtl_rar_set: unlock, MAC0 as 32 bits, MAC4 as 16 bits, lock). */
  setMacAddress(mac: Uint8Array): void {
    if (!(mac instanceof Uint8Array) || mac.length !== 6 || mac[0] & 1) {
      throw new NicError('EXO_ERR_NIC_CONFIG', 'expected a 6-byte unicast MAC address');
    }
    this.mac = Uint8Array.from(mac);
    this.rarSet();
  }

  private rarSet(): void {
    const m = this.mac;
    this.mmio.write8(R.Cfg9346, R.Cfg9346_Unlock);
    this.mmio.write32(R.MAC0, (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0);
    this.mmio.read32(R.MAC0); // flush the posted write, as r8169 does with RTL_R32(tp, MAC0)
    this.mmio.write16(R.MAC0 + 4, m[4] | (m[5] << 8));
    this.mmio.read16(R.MAC0 + 4);
    this.mmio.write8(R.Cfg9346, R.Cfg9346_Lock);
  }

  link(): LinkState {
    const p = this.phy;
    const up = (p & R.LinkStatus) !== 0;
    return {
      up,
      speed: !up ? 0 : p & R._1000bpsF ? 1000 : p & R._100bps ? 100 : p & R._10bps ? 10 : 0,
      fullDuplex: up && (p & R.FullDup) !== 0,
    };
  }

  counters(): DeviceCounters {
    if (this.started) {
      if (this.txDirty !== this.txCur) this.rtlTx();
      this.collectMissed();
    }
    return { ...this.stats };
  }

  /**
   * Folds the chip's 24-bit missed packet counter into the counters. r8169 reads MPC and then clears it, which
   * loses the frames missed between the read and the clear while the NIC runs concurrently; this driver
   * counts the difference from the last read instead and clears only when half the range is used.
   */
  private collectMissed(): void {
    const mpc = this.mmio.read32(R.RxMissed) & 0xffffff;
    this.stats.rxMissed += (mpc - this.lastMpc) & 0xffffff;
    this.lastMpc = mpc;
    if (mpc >= 0x800000) {
      this.mmio.write32(R.RxMissed, 0);
      this.lastMpc = 0;
    }
  }

  /**
   * The chip's own tally counters (rtl8169_update_counters): point CounterAddr at a DMA area, write
   * CounterDump, wait until the chip clears it, read the block. Only while the receiver runs, as r8169 does
   * (some chips cannot dump otherwise); undefined when stopped.
   */
  hardwareCounters(): TallyCounters | undefined {
    if (!this.started) return undefined;
    const io = this.mmio;
    const low = this.tallyAddr >>> 0;
    io.write32(R.CounterAddrHigh, Math.floor(this.tallyAddr / 2 ** 32));
    io.write32(R.CounterAddrLow, low);
    io.write32(R.CounterAddrLow, low | R.CounterDump);
    for (let i = 0; io.read32(R.CounterAddrLow) & R.CounterDump; i++) {
      if (i >= RESET_POLLS) throw new NicError('EXO_ERR_NIC_STATE', `${this.name}: the tally dump did not complete`);
    }
    const v = this.memory.view;
    const out = {} as Record<keyof TallyCounters, number>;
    for (const [name, off, width] of TALLY_LAYOUT) {
      out[name] =
        width === 8
          ? Number(v.getBigUint64(this.tallyAddr + off, true))
          : width === 4
            ? v.getUint32(this.tallyAddr + off, true)
            : v.getUint16(this.tallyAddr + off, true);
    }
    return out;
  }

  setEventHandler(handler: ((event: DeviceEvent) => void) | null): void {
    this.eventHandler = handler;
  }

  // --- bring-up and teardown ----------------------------------------------------------------------------

  start(): void {
    if (this.started) return;
    if (this.gone) throw new NicError('EXO_ERR_NIC_STATE', `${this.name}: the device is gone`);
    this.hwReset();
    this.initRings();
    this.hwStart();
    this.started = true;
    this.checkLink(false);
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    // rtl8169_down: mask and acknowledge interrupts, stop the engines, reset, reclaim.
    this.mmio.write16(R.IntrMask, 0);
    this.mmio.write16(R.IntrStatus, 0xffff);
    this.mmio.write8(R.ChipCmd, 0);
    this.collectMissed();
    this.hwReset();
    this.dropTx();
    this.napiScheduled = false;
  }

  /** Stops and restarts the chip (rtl_reset_work), e.g. after SYSErr. Frames not yet sent are dropped. */
  reset(): void {
    if (!this.started) return;
    this.stop();
    this.stats.resets++;
    this.start();
    this.emit('reset');
  }

  /** rtl_hw_reset: CmdReset, then wait until the chip clears it. */
  private hwReset(): void {
    this.lastMpc = 0; // the reset clears MPC
    this.mmio.write8(R.ChipCmd, R.CmdReset);
    for (let i = 0; i < RESET_POLLS; i++) {
      const v = this.mmio.read8(R.ChipCmd);
      if (v === 0xff) break;
      if (!(v & R.CmdReset)) return;
    }
    this.gone = true;
    throw new NicError('EXO_ERR_NIC_STATE', `${this.name}: the chip did not complete its reset`);
  }

  /** rtl8169_init_ring + rtl8169_rx_fill: every RX slot armed, every TX slot empty, EOR on each last one. */
  private initRings(): void {
    const w = this.words;
    for (let i = 0; i < this.rxSize; i++) {
      const d = this.rxRing + i * DESC_SIZE;
      this.writeBufferAddress(d, this.rxBufAddr[i]);
      w[(d + 4) >> 2] = 0;
      Atomics.store(w, d >> 2, this.rxArmed(i));
    }
    for (let i = 0; i < this.txSize; i++) {
      const d = this.txRing + i * DESC_SIZE;
      this.writeBufferAddress(d, this.txBufAddr[i]);
      w[(d + 4) >> 2] = 0;
      Atomics.store(w, d >> 2, i === this.txSize - 1 ? RingEnd : 0);
    }
    this.rxCur = 0;
    this.txCur = 0;
    this.txDirty = 0;
    this.stagedSlots = 0;
    this.stagedFrames = 0;
    this.lent = false;
  }

  private writeBufferAddress(desc: number, addr: number): void {
    const v = this.memory.view;
    v.setUint32(desc + 8, addr >>> 0, true);
    v.setUint32(desc + 12, Math.floor(addr / 2 ** 32), true);
  }

  /** opts1 of an RX slot handed to the NIC: OWN, EOR on the last slot, the buffer size. */
  private rxArmed(slot: number): number {
    return DescOwn | (slot === this.rxSize - 1 ? RingEnd : 0) | this.bufSize;
  }

  /** rtl_hw_start in reference/rtl8169.md's order. */
  private hwStart(): void {
    const io = this.mmio;
    io.write8(R.Cfg9346, R.Cfg9346_Unlock);
    io.write16(R.CPlusCmd, R.PCIMulRW);
    io.write16(R.RxMaxSize, this.bufSize);
    // Ring addresses, High before Low (r8169: some boards need this order; Low also resets the NIC's index).
    io.write32(R.TxDescStartAddrHigh, Math.floor(this.txRing / 2 ** 32));
    io.write32(R.TxDescStartAddrLow, this.txRing >>> 0);
    io.write32(R.RxDescAddrHigh, Math.floor(this.rxRing / 2 ** 32));
    io.write32(R.RxDescAddrLow, this.rxRing >>> 0);
    io.write8(R.Cfg9346, R.Cfg9346_Lock);
    io.write8(R.ChipCmd, R.CmdTxEnb | R.CmdRxEnb);
    this.writeRxConfig();
    io.write32(R.TxConfig, (3 << R.TxInterFrameGapShift) | (7 << R.TxDMAShift));
    this.writeRxMode();
    io.write16(R.IntrStatus, 0xffff); // stale events from before the reset
    io.write16(R.IntrMask, IRQ_MASK);
  }

  private writeRxConfig(): void {
    let accept = R.AcceptBroadcast | R.AcceptMyPhys | R.AcceptMulticast;
    if (this.rxMode.promiscuous) accept |= R.AcceptAllPhys;
    this.mmio.write32(R.RxConfig, (7 << R.RxCfgFIFOShift) | (7 << R.RxCfgDMAShift) | accept);
  }

  /** rtl_set_rx_mode: the multicast hash into MAR0..7 (MAR0 first as r8169 does). */
  private writeRxMode(): void {
    const m = this.rxMode;
    const all = m.promiscuous || m.allMulticast;
    const mar = all ? new Uint8Array(8).fill(0xff) : m.mar;
    this.mmio.write32(R.MAR0, (mar[0] | (mar[1] << 8) | (mar[2] << 16) | (mar[3] << 24)) >>> 0);
    this.mmio.write32(R.MAR0 + 4, (mar[4] | (mar[5] << 8) | (mar[6] << 16) | (mar[7] << 24)) >>> 0);
  }

  setReceiveFilter(filter: {
    readonly promiscuous?: boolean;
    readonly allMulticast?: boolean;
    readonly multicast?: readonly Uint8Array[];
  }): void {
    const mar = new Uint8Array(8);
    for (const addr of filter.multicast ?? []) {
      if (!(addr instanceof Uint8Array) || addr.length !== 6 || !(addr[0] & 1)) {
        throw new NicError('EXO_ERR_NIC_CONFIG', 'expected 6-byte multicast addresses (group bit set)');
      }
      const bit = multicastHashBit(addr);
      mar[bit >> 3] |= 1 << (bit & 7);
    }
    this.rxMode = { promiscuous: Boolean(filter.promiscuous), allMulticast: Boolean(filter.allMulticast), mar };
    if (this.started) {
      this.writeRxConfig();
      this.writeRxMode();
    }
  }

  // --- interrupts ---------------------------------------------------------------------------------------

  /**
   * rtl8169_interrupt: read IntrStatus (0xffff: the device is gone), mask the chip's interrupts, acknowledge
   * the events, handle link and system errors here and leave RX/TX to the poll (receive), which unmasks.
   */
  interrupt(): void {
    if (!this.started) return;
    const status = this.mmio.read16(R.IntrStatus);
    if (status === 0xffff) {
      this.gone = true;
      this.started = false;
      return;
    }
    if (!(status & IRQ_MASK)) return;
    this.mmio.write16(R.IntrMask, 0);
    this.mmio.write16(R.IntrStatus, status);
    if (status & R.RxOverflow) this.stats.rxNoBufferEvents++;
    if (status & R.TxErr) this.stats.txErrors++;
    this.napiScheduled = true;
    if (status & R.SYSErr) {
      this.reset();
      return;
    }
    if (status & R.LinkChg) this.checkLink(true);
    if (status & (R.RxOK | R.RxErr | R.RxOverflow | R.RxFIFOOver)) this.emit('rx');
    if (status & (R.TxOK | R.TxErr)) this.emit('tx');
    // Nobody to poll: unmask at once so later events still arrive.
    if (!this.eventHandler) this.unmask();
  }

  private unmask(): void {
    if (this.napiScheduled && this.started) {
      this.napiScheduled = false;
      this.mmio.write16(R.IntrMask, IRQ_MASK);
    }
  }

  /** Reads PHYstatus and follows the carrier (netif_carrier_on/off). */
  private checkLink(fromIrq: boolean): void {
    this.phy = this.mmio.read8(R.PHYstatus);
    const up = (this.phy & R.LinkStatus) !== 0;
    // The NIC stalls TX while the link is down: kick it again for frames handed over meanwhile, even when
    // the link went down and up again before this handler ran (the carrier looks unchanged then).
    if (up && this.txCur !== this.txDirty) this.mmio.write8(R.TxPoll, R.NPQ);
    if (up === this.carrier) return;
    this.carrier = up;
    if (fromIrq) this.stats.linkChanges++;
    this.emit('link');
  }

  private emit(event: DeviceEvent): void {
    this.eventHandler?.(event);
  }

  // --- RX -----------------------------------------------------------------------------------------------

  receive(sink: RxSink, budget = 64): number {
    if (!this.started) return 0;
    if (this.txDirty !== this.txCur) this.rtlTx();
    const n = this.rtlRx(sink, budget);
    if (n < budget) this.unmask();
    return n;
  }

  /**
   * rtl_rx: walk from the current slot while the NIC has handed descriptors back; drop error frames and
   * frames not in one descriptor (counting why), lend good ones to the sink, re-arm every slot with the same
   * buffer (opts2 first, then opts1 with OWN, as rtl8169_mark_to_asic does after its barrier).
   */
  private rtlRx(sink: RxSink, budget: number): number {
    const w = this.words;
    const ring = this.rxRing;
    const size = this.rxSize;
    const last = size - 1;
    const armed = DescOwn | this.bufSize;
    const maxLen = this.bufSize - 4;
    const views = this.rxViews;
    let cur = this.rxCur;
    let packets = 0;
    let bytes = 0;
    /** The descriptor lent to the sink, re-armed in `finally` if the sink throws. */
    let lent = -1;
    try {
      for (let seen = 0; seen < budget; seen++) {
        const d = ring + cur * DESC_SIZE;
        const status = Atomics.load(w, d >> 2);
        if (status & DescOwn) break;
        const len = (status & RX_LENGTH_MASK) - 4;
        if ((status & (RxRES | FirstFrag | LastFrag)) === (FirstFrag | LastFrag) && len >= 14 && len <= maxLen) {
          if (status & RxMAR) this.stats.rxMulticast++;
          packets++;
          bytes += len;
          lent = d;
          sink(views[cur], len, w);
          lent = -1;
        } else this.countRxError(status);
        w[(d + 4) >> 2] = 0;
        Atomics.store(w, d >> 2, cur === last ? armed | RingEnd : armed);
        cur = cur === last ? 0 : cur + 1;
      }
    } finally {
      if (lent >= 0) {
        w[(lent + 4) >> 2] = 0;
        Atomics.store(w, lent >> 2, cur === last ? armed | RingEnd : armed);
        cur = cur === last ? 0 : cur + 1;
      }
      this.rxCur = cur;
      this.stats.rxPackets += packets;
      this.stats.rxBytes += bytes;
    }
    return packets;
  }

  /** Why a returned descriptor carries no deliverable frame (r8169's rtl8169_rx_csum / length checks). */
  private countRxError(status: number): void {
    const st = this.stats;
    st.rxErrors++;
    if (status & RxRES) {
      if (status & (RxRWT | RxRUNT)) st.rxLengthErrors++;
      if (status & RxCRC) st.rxCrcErrors++;
    } else {
      // Not in one descriptor (r8169 does not reassemble: each piece is dropped) or a bad length.
      st.rxLengthErrors++;
    }
  }

  // --- TX -----------------------------------------------------------------------------------------------

  /** Free TX slots (neither in flight nor staged nor lent). */
  private txFree(): number {
    return this.txSize - (this.txCur - this.txDirty) - this.stagedSlots;
  }

  txAcquire(): Uint8Array | null {
    if (!this.started || !this.carrier) return null;
    if (this.txFree() < 1) {
      this.rtlTx();
      if (this.txFree() < 1) return null;
    }
    this.lent = true;
    return this.txViews[(this.txCur + this.stagedSlots) % this.txSize];
  }

  txSubmit(length: number): void {
    if (!this.lent) throw new NicError('EXO_ERR_NIC_STATE', 'txSubmit without a buffer from txAcquire');
    if (!Number.isInteger(length) || length < 14 || length > this.bufSize - 4) {
      throw new NicError(
        'EXO_ERR_NIC_FRAME',
        `expected a frame length between 14 and ${this.bufSize - 4} bytes, got ${length}`,
      );
    }
    this.lent = false;
    const slot = (this.txCur + this.stagedSlots) % this.txSize;
    this.stageSlot(slot, FirstFrag | LastFrag | length, length);
    this.stagedFrames++;
  }

  private stageSlot(slot: number, opts1: number, length: number): void {
    this.txLen[slot] = length;
    this.txOpts[slot] = opts1 | (slot === this.txSize - 1 ? RingEnd : 0);
    this.stagedSlots++;
  }

  txDiscard(): void {
    this.lent = false;
  }

  transmit(frame: Uint8Array): boolean {
    const len = frame.length;
    if (!(frame instanceof Uint8Array) || len < 14 || len > MAX_TX_FRAME) {
      throw new NicError('EXO_ERR_NIC_FRAME', `expected a frame of 14 to ${MAX_TX_FRAME} bytes, got ${len}`);
    }
    if (this.lent) throw new NicError('EXO_ERR_NIC_STATE', 'transmit while a TX buffer is lent');
    const segs = Math.ceil(len / this.bufSize);
    if (!this.started || !this.carrier) return false;
    if (this.txFree() < segs) {
      this.rtlTx();
      if (this.txFree() < segs) return false;
    }
    // start_xmit: one descriptor per fragment, FS on the first, LS on the last.
    for (let i = 0, off = 0; i < segs; i++) {
      const n = Math.min(this.bufSize, len - off);
      const slot = (this.txCur + this.stagedSlots) % this.txSize;
      this.txViews[slot].set(frame.subarray(off, off + n));
      this.stageSlot(slot, (i === 0 ? FirstFrag : 0) | (i === segs - 1 ? LastFrag : 0) | n, n);
      off += n;
    }
    this.stagedFrames++;
    return true;
  }

  /**
   * Hands the staged frames over: descriptors get OWN from the last to the first, so the NIC, which may be
   * walking the ring concurrently, never sees a frame's first descriptor before the rest; then one TxPoll
   * (r8169 rings the doorbell once per batch: netdev_xmit_more).
   */
  txCommit(): number {
    const n = this.stagedSlots;
    if (!n) return 0;
    const w = this.words;
    for (let i = n - 1; i >= 0; i--) {
      const slot = (this.txCur + i) % this.txSize;
      const d = this.txRing + slot * DESC_SIZE;
      w[(d + 4) >> 2] = 0;
      Atomics.store(w, d >> 2, DescOwn | this.txOpts[slot]);
    }
    this.txCur += n;
    const frames = this.stagedFrames;
    this.stagedSlots = 0;
    this.stagedFrames = 0;
    this.mmio.write8(R.TxPoll, R.NPQ);
    return frames;
  }

  txAbort(): number {
    const frames = this.stagedFrames;
    this.stats.txDropped += frames;
    this.stagedSlots = 0;
    this.stagedFrames = 0;
    this.lent = false;
    return frames;
  }

  /** rtl_tx: reclaim slots from dirty while the NIC has cleared OWN; count a frame at its last segment. */
  private rtlTx(): void {
    const w = this.words;
    const st = this.stats;
    let dirty = this.txDirty;
    const cur = this.txCur;
    while (dirty !== cur) {
      const slot = dirty % this.txSize;
      const d = this.txRing + slot * DESC_SIZE;
      const status = Atomics.load(w, d >> 2);
      if (status & DescOwn) break;
      st.txBytes += this.txLen[slot];
      if (this.txOpts[slot] & LastFrag) st.txPackets++;
      dirty++;
    }
    this.txDirty = dirty;
  }

  /** Drops frames in flight and staged (on stop/reset); the rings are rebuilt by the next start. */
  private dropTx(): void {
    this.rtlTx();
    let frames = 0;
    for (let n = this.txDirty; n !== this.txCur; n++) if (this.txOpts[n % this.txSize] & LastFrag) frames++;
    this.stats.txDropped += frames + this.stagedFrames;
    this.txDirty = this.txCur;
    this.stagedSlots = 0;
    this.stagedFrames = 0;
    this.lent = false;
  }
}
