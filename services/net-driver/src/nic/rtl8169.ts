import { NicError } from '../errors.ts';
import { WIRE_FCS_BAD, type Wire, type WirePort } from '../wire/wire.ts';
import { crc32Raw, multicastHashBit } from './crc32.ts';
import {
  DESC_SIZE,
  DescOwn,
  FirstFrag,
  LastFrag,
  RingEnd,
  RX_LENGTH_MASK,
  RxBAR,
  RxCRC,
  RxMAR,
  RxPAM,
  RxRES,
  RxRUNT,
  RxRWT,
  TX_LENGTH_MASK,
} from './descriptor.ts';
import { type AccessWidth, checkAccess, type MmioTarget } from './mmio.ts';
import type { PhysicalMemory } from './physical-memory.ts';
import * as R from './registers.ts';

/** Statistics the model keeps about itself (what a logic analyser would see; not chip registers). */
export interface ModelStats {
  /** Frames DMA'd into RX descriptors (good and error frames). */
  rxFrames: number;
  /** Frames the address filter (RxConfig, MAC, MAR) rejected. */
  rxFiltered: number;
  /** Frames dropped because RxEnb was clear or the link was down. */
  rxDisabled: number;
  /** Error frames (CRC, runt, watchdog) dropped because AcceptErr / AcceptRunt was clear. */
  rxErrorsDropped: number;
  /** Frames longer than RxMaxSize, discarded by the MAC. */
  rxOversize: number;
  /** Frames dropped for lack of a NIC-owned descriptor (also counted in MPC). */
  rxNoDescriptor: number;
  /** Frames sent on the wire. */
  txFrames: number;
  /** TX frames rejected (bad length, bad fragment chain). */
  txErrors: number;
  /** Descriptors or buffers that pointed outside physical memory (SYSErr). */
  dmaErrors: number;
}

/**
 * The chip's tally counters, dumped to memory on CounterDump in r8169's struct rtl8169_counters layout
 * (64 bytes, little-endian): tx_packets u64, rx_packets u64, tx_errors u64, rx_errors u32, rx_missed u16,
 * align_errors u16, tx_one_collision u32, tx_multi_collision u32, rx_unicast u64, rx_broadcast u64,
 * rx_multicast u32, tx_aborted u16, tx_underun u16. Full duplex without collisions: those stay 0.
 */
export interface TallyCounters {
  txPackets: number;
  rxPackets: number;
  txErrors: number;
  rxErrors: number;
  rxMissed: number;
  alignErrors: number;
  txOneCollision: number;
  txMultiCollision: number;
  rxUnicast: number;
  rxBroadcast: number;
  rxMulticast: number;
  txAborted: number;
  txUnderrun: number;
}

/** Field layout of the tally block: [name, byte offset, width]. */
export const TALLY_LAYOUT: readonly (readonly [keyof TallyCounters, number, 2 | 4 | 8])[] = [
  ['txPackets', 0, 8],
  ['rxPackets', 8, 8],
  ['txErrors', 16, 8],
  ['rxErrors', 24, 4],
  ['rxMissed', 28, 2],
  ['alignErrors', 30, 2],
  ['txOneCollision', 32, 4],
  ['txMultiCollision', 36, 4],
  ['rxUnicast', 40, 8],
  ['rxBroadcast', 48, 8],
  ['rxMulticast', 56, 4],
  ['txAborted', 60, 2],
  ['txUnderrun', 62, 2],
];

function zeroTally(): TallyCounters {
  return {
    txPackets: 0,
    rxPackets: 0,
    txErrors: 0,
    rxErrors: 0,
    rxMissed: 0,
    alignErrors: 0,
    txOneCollision: 0,
    txMultiCollision: 0,
    rxUnicast: 0,
    rxBroadcast: 0,
    rxMulticast: 0,
    txAborted: 0,
    txUnderrun: 0,
  };
}

/** Construction options of {@link Rtl8169Model}. */
export interface Rtl8169ModelOptions {
  /** Physical memory the NIC DMAs into. */
  readonly memory: PhysicalMemory;
  /** The station address "in the EEPROM", loaded into IDR0-5 at power-on. */
  readonly mac: Uint8Array;
  /**
   * The register window's backing store (MMIO_SIZE bytes). Pass a SharedArrayBuffer when the driver reads
   * registers from another thread; by default the model makes its own.
   */
  readonly registers?: SharedArrayBuffer;
  /**
   * Called whenever an event leaves (IntrStatus & IntrMask) non-zero: the interrupt line is asserted. The
   * receiver coalesces (see interrupt-line.ts); it must not call back into the model synchronously.
   */
  readonly onInterrupt?: () => void;
  /** Write the 4 FCS bytes after each received frame, as the chip does (default true). */
  readonly writeFcs?: boolean;
}

/** The XID the model reports in TxConfig: (TxConfig >> 20) & 0xfcf = 0x000, the original RTL8169. */
const TX_CONFIG_XID = 0x00000000;
/** Frames longer than this (including FCS) trip the receive watchdog (RWT), per the datasheet. */
const RWT_THRESHOLD = 8192;
/** Shortest frame on the wire including the FCS; shorter ones are runts. */
const MIN_FRAME_WITH_FCS = 64;
/** The NIC pads shorter TX frames to this length before appending the FCS. */
const MIN_TX_FRAME = 60;
/** Largest frame the TX engine accepts (the model's choice: the largest RX frame, 16 KiB - 1, less FCS). */
const MAX_TX_FRAME = 16383 - 4;
/** PHYstatus when the link is up: 1000 Mb/s, full duplex, flow control both ways. */
const PHY_LINK_UP = R.LinkStatus | R.FullDup | R._1000bpsF | R.TxFlowCtrl | R.RxFlowCtrl;
/** Power-on RxMaxSize (the model's choice: a standard frame with a VLAN tag and FCS fits). */
const RX_MAX_SIZE_DEFAULT = 1536;

/**
 * A model of the Realtek RTL8169 gigabit Ethernet controller, as seen from its register window and from
 * physical memory (reference/rtl8169.md). It runs in the driver's thread (calls through {@link DirectMmio})
 * or in a worker thread (model-worker.ts), where it reads descriptors concurrently with the driver.
 *
 * What is modelled: reset, ChipCmd RxEnb/TxEnb, Cfg9346 lock of IDR and Config0-5, RxConfig accept bits with
 * MAC and multicast-hash matching, RxMaxSize, TxPoll NPQ doorbell, IntrMask and write-1-to-clear IntrStatus,
 * MPC, PHYstatus and link changes, normal-priority TX and the RX ring with OWN/EOR/FS/LS, frames over several
 * descriptors, RX status bits, RDU. Not modelled: the high-priority queue, checksum and segmentation
 * offload, VLAN stripping, tally counters, interrupt mitigation, the PHY's MII registers.
 */
export class Rtl8169Model implements MmioTarget, WirePort {
  readonly memory: PhysicalMemory;
  /** The register window's bytes (shared with a driver in another thread in worker mode). */
  readonly registers: SharedArrayBuffer;
  readonly stats: ModelStats = {
    rxFrames: 0,
    rxFiltered: 0,
    rxDisabled: 0,
    rxErrorsDropped: 0,
    rxOversize: 0,
    rxNoDescriptor: 0,
    txFrames: 0,
    txErrors: 0,
    dmaErrors: 0,
  };
  /** The chip's tally counters (what CounterDump writes to memory). */
  readonly tally: TallyCounters = zeroTally();
  private readonly r8: Uint8Array;
  private readonly r16: Uint16Array;
  private readonly r32: Uint32Array;
  private readonly eepromMac: Uint8Array;
  private readonly onInterrupt: () => void;
  private readonly writeFcs: boolean;
  private wire: Wire | undefined;
  private carrier = false;
  /** The NIC's private ring positions (physical addresses of the next descriptor): no register shows them. */
  private rxCur = 0;
  private txCur = 0;
  /** Assembly buffer for TX frames spanning several descriptors or needing padding. */
  private readonly txScratch = new Uint8Array(MAX_TX_FRAME + 64);
  private readonly words: Int32Array;
  /**
   * Copies of the registers the receive path reads for every frame. Only the model writes its register
   * window (driver writes arrive through mmioWrite), so the copies are refreshed after each write and reset.
   */
  private rxEnabled = false;
  private rxConfig = 0;
  private rxMaxSize = 0;
  private readonly macCache = new Uint8Array(6);

  constructor(options: Rtl8169ModelOptions) {
    if (!(options.mac instanceof Uint8Array) || options.mac.length !== 6) {
      throw new NicError('EXO_ERR_NIC_CONFIG', `expected a 6-byte MAC address, got ${String(options.mac)}`);
    }
    this.memory = options.memory;
    this.words = options.memory.words;
    this.registers = options.registers ?? new SharedArrayBuffer(R.MMIO_SIZE);
    if (this.registers.byteLength !== R.MMIO_SIZE) {
      throw new NicError('EXO_ERR_NIC_CONFIG', `expected a ${R.MMIO_SIZE}-byte register window`);
    }
    this.r8 = new Uint8Array(this.registers);
    this.r16 = new Uint16Array(this.registers);
    this.r32 = new Uint32Array(this.registers);
    this.eepromMac = Uint8Array.from(options.mac);
    this.onInterrupt = options.onInterrupt ?? (() => {});
    this.writeFcs = options.writeFcs ?? true;
    this.powerOn();
  }

  /** Power-on state: everything zero, the MAC from the EEPROM, registers at their defaults. */
  private powerOn(): void {
    for (let i = 0; i < R.MMIO_SIZE; i += 4) Atomics.store(this.r32, i >> 2, 0);
    for (let i = 0; i < 6; i++) Atomics.store(this.r8, R.MAC0 + i, this.eepromMac[i]);
    Atomics.store(this.r16, R.RxMaxSize >> 1, RX_MAX_SIZE_DEFAULT);
    Atomics.store(this.r32, R.TxConfig >> 2, TX_CONFIG_XID);
    Atomics.store(this.r8, R.PHYstatus, this.carrier ? PHY_LINK_UP : 0);
    this.refreshCache();
  }

  /** Connects the PHY to a wire (or disconnects it with undefined). */
  attachWire(wire: Wire | undefined): void {
    this.wire = wire;
    if (wire) wire.attach(this);
    else this.setCarrier(false);
  }

  // --- register window ----------------------------------------------------------------------------------

  mmioRead(offset: number, width: AccessWidth): number {
    checkAccess(offset, width);
    // Reads have no side effects on this chip (IntrStatus is write-1-to-clear, not read-to-clear).
    if (width === 1) return Atomics.load(this.r8, offset);
    if (width === 2) return Atomics.load(this.r16, offset >> 1);
    return Atomics.load(this.r32, offset >> 2);
  }

  mmioWrite(offset: number, width: AccessWidth, value: number): void {
    checkAccess(offset, width);
    // Fast paths for the two writes on the data path: the doorbell and the interrupt acknowledge.
    if (width === 1 && offset === R.TxPoll) {
      this.writeTxPoll(value);
      return;
    }
    if (width === 2 && offset === R.IntrStatus) {
      this.writeIntrStatus(value);
      return;
    }
    let touched = 0;
    for (let i = 0; i < width; i++) touched |= this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
    this.refreshCache();
    if (touched & TOUCH_IRQ) this.updateInterrupt();
  }

  private refreshCache(): void {
    this.rxEnabled = (Atomics.load(this.r8, R.ChipCmd) & R.CmdRxEnb) !== 0;
    this.rxConfig = Atomics.load(this.r32, R.RxConfig >> 2);
    this.rxMaxSize = Atomics.load(this.r16, R.RxMaxSize >> 1);
    for (let i = 0; i < 6; i++) this.macCache[i] = Atomics.load(this.r8, R.MAC0 + i);
  }

  /** Applies one byte of a register write; returns TOUCH_* flags for the work that must follow. */
  private writeByte(off: number, b: number): number {
    const unlocked = Atomics.load(this.r8, R.Cfg9346) === R.Cfg9346_Unlock;
    if (off < R.MAC0 + 6) {
      // IDR0-5 are writable only while Cfg9346 is unlocked (r8169's rtl_rar_set unlocks around them).
      if (unlocked) Atomics.store(this.r8, off, b);
      return 0;
    }
    if (off < R.MAR0) return 0; // reserved
    if (off >= R.Config0 && off <= R.Config5) {
      if (unlocked) Atomics.store(this.r8, off, b);
      return 0;
    }
    switch (off) {
      case R.ChipCmd:
        this.writeChipCmd(b);
        return 0;
      case R.TxPoll:
        this.writeTxPoll(b);
        return 0;
      case R.IntrStatus:
      case R.IntrStatus + 1:
        // Write 1 to clear.
        Atomics.and(this.r8, off, ~b & 0xff);
        return TOUCH_IRQ;
      case R.IntrMask:
      case R.IntrMask + 1:
        Atomics.store(this.r8, off, b);
        return TOUCH_IRQ;
      case R.RxMissed:
      case R.RxMissed + 1:
      case R.RxMissed + 2:
      case R.RxMissed + 3:
        // Writing any value clears the missed packet counter.
        Atomics.store(this.r32, R.RxMissed >> 2, 0);
        return 0;
      case R.PHYstatus:
        return 0; // read-only
      case R.TxConfig + 2:
      case R.TxConfig + 3: {
        // The XID bits are read-only.
        const shift = 8 * (off - R.TxConfig);
        const ro = (R.TX_CONFIG_XID_MASK >>> shift) & 0xff;
        Atomics.store(this.r8, off, (Atomics.load(this.r8, off) & ro) | (b & ~ro & 0xff));
        return 0;
      }
      case R.CounterAddrLow:
        // The command bits: dump or reset the tally counters, then clear them (the driver polls for that).
        Atomics.store(this.r8, off, b & ~(R.CounterDump | R.CounterReset));
        if (b & R.CounterReset) Object.assign(this.tally, zeroTally());
        if (b & R.CounterDump) this.dumpTally();
        return 0;
      case R.TxDescStartAddrLow:
        Atomics.store(this.r8, off, b);
        this.txCur = this.ringBase(R.TxDescStartAddrLow);
        return 0;
      case R.RxDescAddrLow:
        Atomics.store(this.r8, off, b);
        this.rxCur = this.ringBase(R.RxDescAddrLow);
        return 0;
      default:
        if (
          (off > R.TxDescStartAddrLow && off < R.TxDescStartAddrLow + 4) ||
          (off > R.RxDescAddrLow && off < R.RxDescAddrLow + 4)
        ) {
          Atomics.store(this.r8, off, b);
          // Writing the low register (re)starts the NIC's index at the ring base.
          if (off < R.TxDescStartAddrLow + 4) this.txCur = this.ringBase(R.TxDescStartAddrLow);
          else this.rxCur = this.ringBase(R.RxDescAddrLow);
          return 0;
        }
        Atomics.store(this.r8, off, b);
        return 0;
    }
  }

  /** DMA the tally counters to CounterAddrHigh:Low (64-byte aligned; the low 6 bits carry commands). */
  private dumpTally(): void {
    const addr =
      (Atomics.load(this.r32, R.CounterAddrLow >> 2) & ~0x3f) +
      Atomics.load(this.r32, R.CounterAddrHigh >> 2) * 2 ** 32;
    if (!this.memory.contains(addr, R.TALLY_SIZE)) {
      this.dmaError();
      return;
    }
    const v = this.memory.view;
    for (const [name, off, width] of TALLY_LAYOUT) {
      const value = this.tally[name];
      if (width === 8) v.setBigUint64(addr + off, BigInt(value), true);
      else if (width === 4) v.setUint32(addr + off, Math.min(value, 0xffffffff), true);
      else v.setUint16(addr + off, Math.min(value, 0xffff), true);
    }
  }

  private ringBase(lowReg: number): number {
    const low = Atomics.load(this.r32, lowReg >> 2);
    const high = Atomics.load(this.r32, (lowReg + 4) >> 2);
    return low + high * 2 ** 32;
  }

  private writeChipCmd(b: number): void {
    if (b & R.CmdReset) {
      this.reset();
      return;
    }
    Atomics.store(this.r8, R.ChipCmd, b & (R.CmdRxEnb | R.CmdTxEnb));
  }

  /**
   * Software reset: the MAC's registers return to their defaults except the station address and the ring
   * bases; the NIC's ring indices restart at the bases; CmdReset clears itself when done (at once here).
   */
  private reset(): void {
    const keep = new Uint8Array(16);
    keep.set(this.r8.subarray(R.MAC0, R.MAC0 + 6), 0);
    const txLo = Atomics.load(this.r32, R.TxDescStartAddrLow >> 2);
    const txHi = Atomics.load(this.r32, R.TxDescStartAddrHigh >> 2);
    const rxLo = Atomics.load(this.r32, R.RxDescAddrLow >> 2);
    const rxHi = Atomics.load(this.r32, R.RxDescAddrHigh >> 2);
    this.powerOn();
    for (let i = 0; i < 6; i++) Atomics.store(this.r8, R.MAC0 + i, keep[i]);
    Atomics.store(this.r32, R.TxDescStartAddrLow >> 2, txLo);
    Atomics.store(this.r32, R.TxDescStartAddrHigh >> 2, txHi);
    Atomics.store(this.r32, R.RxDescAddrLow >> 2, rxLo);
    Atomics.store(this.r32, R.RxDescAddrHigh >> 2, rxHi);
    this.txCur = this.ringBase(R.TxDescStartAddrLow);
    this.rxCur = this.ringBase(R.RxDescAddrLow);
    this.refreshCache();
  }

  private writeIntrStatus(value: number): void {
    Atomics.and(this.r16, R.IntrStatus >> 1, ~value & 0xffff);
    this.updateInterrupt();
  }

  private writeTxPoll(b: number): void {
    if (b & R.FSWInt) this.raise(R.SWInt);
    if (b & R.NPQ) this.transmitPending();
    // HPQ: the model has no high-priority queue; the request is ignored.
  }

  /** Sets IntrStatus bits and asserts the interrupt line if any of them is unmasked. */
  private raise(bits: number): void {
    // Only this side sets or clears IntrStatus bits (driver writes are applied by the model), so when the
    // bits are already set nothing changes, not even the interrupt line: skip the locked update.
    if ((Atomics.load(this.r16, R.IntrStatus >> 1) & bits) === bits) return;
    Atomics.or(this.r16, R.IntrStatus >> 1, bits);
    this.updateInterrupt();
  }

  private updateInterrupt(): void {
    if (Atomics.load(this.r16, R.IntrStatus >> 1) & Atomics.load(this.r16, R.IntrMask >> 1)) this.onInterrupt();
  }

  // --- PHY ------------------------------------------------------------------------------------------------

  /** The wire reports carrier; a change updates PHYstatus and raises LinkChg. */
  setCarrier(up: boolean): void {
    if (up === this.carrier) return;
    this.carrier = up;
    Atomics.store(this.r8, R.PHYstatus, up ? PHY_LINK_UP : 0);
    this.raise(R.LinkChg);
  }

  /** True while the PHY has a link. */
  get linkUp(): boolean {
    return this.carrier;
  }

  /**
   * True when a frame arriving now would find a NIC-owned descriptor. A link partner that honours 802.3x
   * flow control (the 8169 negotiates it: PHYstatus TxFlowCtrl/RxFlowCtrl) stops sending while this is
   * false, as the MAC sends PAUSE frames when its receive FIFO backs up.
   */
  get rxReady(): boolean {
    if (!this.carrier || !this.rxEnabled) return false;
    const d = this.rxCur;
    return this.memory.contains(d, DESC_SIZE) && (Atomics.load(this.words, d >> 2) & DescOwn) !== 0;
  }

  // --- TX -------------------------------------------------------------------------------------------------

  /**
   * The TX engine after a TxPoll NPQ write: from the NIC's index, send every frame whose descriptors the
   * driver owns over to the NIC, clear OWN, raise TxOK; stop at the first descriptor with OWN clear (it is
   * looked at again only after the next TxPoll). A frame whose later fragments are not yet handed over
   * stalls the engine the same way.
   */
  transmitPending(): void {
    const r8 = this.r8;
    if (!(Atomics.load(r8, R.ChipCmd) & R.CmdTxEnb) || !this.carrier) return;
    const mem = this.memory;
    const words = this.words;
    let sent = 0;
    let errors = 0;
    for (;;) {
      const first = this.txCur;
      if (!mem.contains(first, DESC_SIZE) || first & 3) {
        this.dmaError();
        break;
      }
      const opts1 = Atomics.load(words, first >> 2);
      if (!(opts1 & DescOwn)) {
        this.raise(R.TxDescUnavail);
        break;
      }
      // Single-descriptor frame: send straight from the buffer unless it needs padding.
      if ((opts1 & (FirstFrag | LastFrag)) === (FirstFrag | LastFrag)) {
        const len = opts1 & TX_LENGTH_MASK;
        const buf = this.bufferAddress(first);
        if (len === 0 || len > MAX_TX_FRAME) errors++;
        else if (!mem.contains(buf, len)) {
          this.dmaError();
          errors++;
        } else if (len >= MIN_TX_FRAME) {
          this.wire?.transmit(mem.bytes, buf, len);
          sent++;
        } else {
          const s = this.txScratch;
          s.set(mem.bytes.subarray(buf, buf + len), 0);
          s.fill(0, len, MIN_TX_FRAME);
          this.wire?.transmit(s, 0, MIN_TX_FRAME);
          sent++;
        }
        Atomics.store(words, first >> 2, opts1 & ~DescOwn);
        this.txCur = this.nextDescriptor(first, opts1, R.TxDescStartAddrLow);
        continue;
      }
      // Several descriptors: FS ... LS, every one handed over before the frame goes out.
      const count = this.gatherTx(first);
      if (count === GATHER_STALL) break;
      let d = first;
      for (let i = 0; i < count; i++) {
        const o = Atomics.load(words, d >> 2);
        Atomics.store(words, d >> 2, o & ~DescOwn);
        d = this.nextDescriptor(d, o, R.TxDescStartAddrLow);
      }
      this.txCur = d;
      if (this.txLen < 0) errors++;
      else {
        const len = Math.max(this.txLen, MIN_TX_FRAME);
        this.txScratch.fill(0, this.txLen, len);
        this.wire?.transmit(this.txScratch, 0, len);
        sent++;
      }
    }
    this.stats.txFrames += sent;
    this.stats.txErrors += errors;
    this.tally.txPackets += sent;
    this.tally.txErrors += errors;
    if (errors) this.raise(R.TxErr);
    if (sent) this.raise(R.TxOK);
  }

  /** Length assembled by gatherTx, or -1 when the frame is malformed (it is consumed and dropped). */
  private txLen = 0;

  /**
   * Collects a frame spread over descriptors starting at `first` into txScratch (length in txLen, -1 when
   * the chain is malformed: no FS on the first, FS in the middle, too long, or a buffer outside memory).
   * @returns how many descriptors the frame occupies, or GATHER_STALL when one is not yet owned by the NIC
   */
  private gatherTx(first: number): number {
    const mem = this.memory;
    let d = first;
    let total = 0;
    let bad = false;
    for (let n = 1; ; n++) {
      if (!mem.contains(d, DESC_SIZE) || n > 4096) {
        this.dmaError();
        return GATHER_STALL;
      }
      const o = Atomics.load(this.words, d >> 2);
      if (!(o & DescOwn)) return GATHER_STALL;
      if ((n === 1) !== ((o & FirstFrag) !== 0)) bad = true;
      const len = o & TX_LENGTH_MASK;
      const buf = this.bufferAddress(d);
      if (!bad && total + len <= MAX_TX_FRAME && mem.contains(buf, len)) {
        this.txScratch.set(mem.bytes.subarray(buf, buf + len), total);
        total += len;
      } else bad = true;
      if (o & LastFrag || bad) {
        this.txLen = bad || total === 0 ? -1 : total;
        return n;
      }
      d = this.nextDescriptor(d, o, R.TxDescStartAddrLow);
    }
  }

  private bufferAddress(desc: number): number {
    // Plain reads: the driver wrote the address before it set OWN, which the caller has read atomically.
    const w = this.words;
    return (w[(desc + 8) >> 2] >>> 0) + (w[(desc + 12) >> 2] >>> 0) * 2 ** 32;
  }

  private nextDescriptor(desc: number, opts1: number, baseReg: number): number {
    return opts1 & RingEnd ? this.ringBase(baseReg) : desc + DESC_SIZE;
  }

  private dmaError(): void {
    this.stats.dmaErrors++;
    this.raise(R.SYSErr);
  }

  // --- RX -------------------------------------------------------------------------------------------------

  /**
   * A frame arrives from the wire: the MAC checks length and FCS, the address filter decides, and the frame
   * (plus its FCS) is DMA'd into the next NIC-owned descriptors. With no descriptor free the frame is
   * dropped, MPC counts it and RDU is raised.
   */
  deliver(frame: Uint8Array, flags = 0, fcs = -1): void {
    if (!this.carrier || !this.rxEnabled) {
      this.stats.rxDisabled++;
      return;
    }
    const len = frame.length;
    const wireLen = len + 4;
    const rc = this.rxConfig;
    let status = 0;
    // Address filter on the destination MAC.
    if (len < 6) {
      if (!(rc & R.AcceptAllPhys)) {
        this.stats.rxFiltered++;
        return;
      }
    } else if (frame[0] & 1) {
      if (
        frame[0] === 0xff &&
        frame[1] === 0xff &&
        frame[2] === 0xff &&
        frame[3] === 0xff &&
        frame[4] === 0xff &&
        frame[5] === 0xff
      ) {
        status = RxBAR;
        if (!(rc & (R.AcceptBroadcast | R.AcceptAllPhys))) {
          this.stats.rxFiltered++;
          return;
        }
      } else {
        status = RxMAR;
        if (!(rc & R.AcceptAllPhys)) {
          const bit = multicastHashBit(frame, 0);
          if (!(rc & R.AcceptMulticast) || !(Atomics.load(this.r8, R.MAR0 + (bit >> 3)) & (1 << (bit & 7)))) {
            this.stats.rxFiltered++;
            return;
          }
        }
      }
    } else {
      const mac = this.macCache;
      if (
        frame[0] === mac[0] &&
        frame[1] === mac[1] &&
        frame[2] === mac[2] &&
        frame[3] === mac[3] &&
        frame[4] === mac[4] &&
        frame[5] === mac[5]
      ) {
        status = RxPAM;
        if (!(rc & (R.AcceptMyPhys | R.AcceptAllPhys))) {
          this.stats.rxFiltered++;
          return;
        }
      } else if (!(rc & R.AcceptAllPhys)) {
        this.stats.rxFiltered++;
        return;
      }
    }
    // Length and FCS checks: error frames reach the host only with AcceptErr / AcceptRunt.
    if (wireLen > this.rxMaxSize || wireLen > RX_LENGTH_MASK) {
      this.stats.rxOversize++;
      return;
    }
    if (flags & WIRE_FCS_BAD) {
      if (!(rc & R.AcceptErr)) {
        this.stats.rxErrorsDropped++;
        return;
      }
      status |= RxRES | RxCRC;
    }
    if (wireLen < MIN_FRAME_WITH_FCS) {
      if (!(rc & R.AcceptRunt)) {
        this.stats.rxErrorsDropped++;
        return;
      }
      status |= RxRES | RxRUNT;
    }
    if (wireLen > RWT_THRESHOLD) {
      if (!(rc & R.AcceptErr)) {
        this.stats.rxErrorsDropped++;
        return;
      }
      status |= RxRES | RxRWT;
    }
    this.dmaFrame(frame, status, (flags & WIRE_FCS_BAD) !== 0, fcs);
  }

  private dmaFrame(frame: Uint8Array, status: number, badFcs: boolean, wireFcs: number): void {
    const mem = this.memory;
    const words = this.words;
    const bytes = mem.bytes;
    const len = frame.length;
    const wireLen = len + 4;
    const first = this.rxCur;
    if (!mem.contains(first, DESC_SIZE) || first & 3) {
      this.dmaError();
      return;
    }
    const o1 = Atomics.load(words, first >> 2);
    if (!(o1 & DescOwn)) {
      this.missed();
      return;
    }
    const size = o1 & RX_LENGTH_MASK;
    let fcs = 0;
    if (this.writeFcs) {
      fcs = wireFcs >= 0 ? wireFcs : ~crc32Raw(-1, frame, 0, len);
      // A frame reported corrupted carries an FCS that does not match it.
      if (badFcs) fcs = ~fcs;
    }
    if (size >= wireLen) {
      // The common case: the whole frame and its FCS fit one buffer.
      const buf = this.bufferAddress(first);
      if (!mem.contains(buf, wireLen)) {
        this.dmaError();
        return;
      }
      bytes.set(frame, buf);
      if (this.writeFcs) {
        bytes[buf + len] = fcs;
        bytes[buf + len + 1] = fcs >>> 8;
        bytes[buf + len + 2] = fcs >>> 16;
        bytes[buf + len + 3] = fcs >>> 24;
      }
      words[(first + 4) >> 2] = 0; // opts2: no VLAN tag
      Atomics.store(words, first >> 2, (o1 & RingEnd) | FirstFrag | LastFrag | status | wireLen);
      this.rxCur = o1 & RingEnd ? this.ringBase(R.RxDescAddrLow) : first + DESC_SIZE;
    } else if (!this.dmaMulti(frame, status, fcs, first)) return;
    this.stats.rxFrames++;
    const t = this.tally;
    if (status & RxRES) t.rxErrors++;
    else {
      t.rxPackets++;
      if (status & RxBAR) t.rxBroadcast++;
      else if (status & RxMAR) t.rxMulticast++;
      else t.rxUnicast++;
    }
    this.raise(status & RxRES ? R.RxErr : R.RxOK);
  }

  /**
   * A frame longer than one buffer: it goes into as many consecutive NIC-owned descriptors as it needs (the
   * first gets FS, the last LS and the total length; the others carry their buffer size). All of them must be
   * available before the first byte is written, else the frame is missed. Descriptors are handed back last
   * to first, so a driver that sees FS with OWN clear sees the whole frame.
   */
  private dmaMulti(frame: Uint8Array, status: number, fcs: number, first: number): boolean {
    const mem = this.memory;
    const words = this.words;
    const wireLen = frame.length + 4;
    // Pass 1: enough descriptors?
    let need = wireLen;
    let d = first;
    let count = 0;
    for (;;) {
      if (!mem.contains(d, DESC_SIZE) || count > 4096) {
        this.dmaError();
        return false;
      }
      const o = Atomics.load(words, d >> 2);
      if (!(o & DescOwn)) {
        this.missed();
        return false;
      }
      const size = o & RX_LENGTH_MASK;
      if (!mem.contains(this.bufferAddress(d), size)) {
        this.dmaError();
        return false;
      }
      count++;
      need -= size;
      if (need <= 0) break;
      d = this.nextDescriptor(d, o, R.RxDescAddrLow);
      if (d === first) {
        // The whole ring is not enough for this frame.
        this.missed();
        return false;
      }
    }
    // Pass 2: copy (frame then FCS) and record each descriptor's new opts1.
    const fcsBytes = this.txScratch; // scratch reuse: RX and TX never overlap in one call
    fcsBytes[0] = fcs;
    fcsBytes[1] = fcs >>> 8;
    fcsBytes[2] = fcs >>> 16;
    fcsBytes[3] = fcs >>> 24;
    const descs: number[] = [];
    const opts: number[] = [];
    let pos = 0;
    d = first;
    for (let i = 0; i < count; i++) {
      const o = Atomics.load(words, d >> 2);
      const size = o & RX_LENGTH_MASK;
      const buf = this.bufferAddress(d);
      const n = Math.min(size, wireLen - pos);
      for (let k = 0; k < n; k++) {
        const p = pos + k;
        mem.bytes[buf + k] = p < frame.length ? frame[p] : fcsBytes[p - frame.length];
      }
      pos += n;
      const last = i === count - 1;
      descs.push(d);
      opts.push((o & RingEnd) | (i === 0 ? FirstFrag : 0) | (last ? LastFrag : 0) | status | (last ? wireLen : n));
      words[(d + 4) >> 2] = 0;
      d = this.nextDescriptor(d, o, R.RxDescAddrLow);
    }
    for (let i = count - 1; i >= 0; i--) Atomics.store(words, descs[i] >> 2, opts[i]);
    this.rxCur = d;
    return true;
  }

  private missed(): void {
    this.stats.rxNoDescriptor++;
    this.tally.rxMissed++;
    // MPC is a 24-bit counter.
    const mpc = Atomics.load(this.r32, R.RxMissed >> 2);
    if (mpc < 0xffffff) Atomics.store(this.r32, R.RxMissed >> 2, mpc + 1);
    this.raise(R.RxDescUnavail);
  }
}

const TOUCH_IRQ = 1;
const GATHER_STALL = -2;
