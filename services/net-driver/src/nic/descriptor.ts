import type { PhysicalMemory } from './physical-memory.ts';

/**
 * RTL8169 descriptors: 16 bytes in physical memory, opts1 (u32 LE), opts2 (u32 LE), buffer address (u64 LE).
 * Two faces, as smoltcp does for wire formats: {@link DescriptorView} reads and writes the fields in place,
 * and {@link RxDescriptorRepr} / {@link TxDescriptorRepr} are validated plain records with parse / emit.
 *
 * The OWN hand-over: the side that hands a descriptor to the other writes opts2 and the address first and
 * opts1 (which carries OWN) last, with Atomics.store; the side that takes it reads opts1 with Atomics.load
 * before anything else. Atomics are sequentially consistent, so they are the write and read barriers r8169
 * puts around OWN (dma_wmb() before setting DescOwn; READ_ONCE of opts1 before reading the buffer).
 * @module
 */

/** Bytes per descriptor. */
export const DESC_SIZE = 16;
/** Rings must start on a 256-byte boundary (TNPDS / RDSAR). */
export const RING_ALIGN = 256;

/** Byte offsets of the fields inside a descriptor. */
const field = { opts1: 0, opts2: 4, addrLow: 8, addrHigh: 12 } as const;

// --- opts1, both directions ---------------------------------------------------------------------------------
/** The NIC owns the descriptor. (As a signed 32-bit value, so it compares with Int32Array words.) */
export const DescOwn = 1 << 31;
/** End of ring: the NIC wraps to the ring base after this descriptor. */
export const RingEnd = 1 << 30;
/** First segment of a frame. */
export const FirstFrag = 1 << 29;
/** Last segment of a frame. */
export const LastFrag = 1 << 28;

// --- RX opts1 status, written by the NIC when it returns a descriptor ---------------------------------------
export const RxMAR = 1 << 27;
export const RxPAM = 1 << 26;
export const RxBAR = 1 << 25;
export const RxBOVF = 1 << 24;
export const RxFOVF = 1 << 23;
export const RxRWT = 1 << 22;
/** Error summary: set with CRC, RUNT, RWT, FOVF. */
export const RxRES = 1 << 21;
export const RxRUNT = 1 << 20;
export const RxCRC = 1 << 19;
export const RxProtoShift = 17;
export const RxProtoMask = 3 << RxProtoShift;
export const IPFail = 1 << 16;
export const UDPFail = 1 << 15;
export const TCPFail = 1 << 14;
/** RX: buffer size when given to the NIC, frame length including FCS when returned. */
export const RX_LENGTH_MASK = 0x3fff;
/** RX opts2: a VLAN tag was stripped (tag in bits 15:0, byte-swapped). */
export const RxVlanTag = 1 << 16;

// --- TX opts1 / opts2 ---------------------------------------------------------------------------------------
/** TX opts1 bits 15:0: this segment's length. */
export const TX_LENGTH_MASK = 0xffff;
export const TxIPCS = 1 << 18;
export const TxUDPCS = 1 << 17;
export const TxTCPCS = 1 << 16;
export const TxLGSEN = 1 << 27;
/** TX opts2: insert the VLAN tag in bits 15:0. */
export const TxVlanTag = 1 << 17;

/** Reads opts1 of the descriptor at `addr` (acquire). */
export function loadOpts1(mem: PhysicalMemory, addr: number): number {
  return Atomics.load(mem.words, addr >> 2);
}

/** Writes opts1 of the descriptor at `addr` (release: everything written before is visible first). */
export function storeOpts1(mem: PhysicalMemory, addr: number, opts1: number): void {
  Atomics.store(mem.words, addr >> 2, opts1);
}

/** A descriptor in place, at a physical address (no copy). */
export class DescriptorView {
  constructor(
    readonly memory: PhysicalMemory,
    readonly address: number,
  ) {}

  get opts1(): number {
    return Atomics.load(this.memory.words, (this.address + field.opts1) >> 2) >>> 0;
  }
  set opts1(value: number) {
    Atomics.store(this.memory.words, (this.address + field.opts1) >> 2, value | 0);
  }
  get opts2(): number {
    return this.memory.view.getUint32(this.address + field.opts2, true);
  }
  set opts2(value: number) {
    this.memory.view.setUint32(this.address + field.opts2, value >>> 0, true);
  }
  /** The 64-bit buffer address (as a number: physical memory is far below 2^53). */
  get bufferAddress(): number {
    const v = this.memory.view;
    return v.getUint32(this.address + field.addrLow, true) + v.getUint32(this.address + field.addrHigh, true) * 2 ** 32;
  }
  set bufferAddress(value: number) {
    const v = this.memory.view;
    v.setUint32(this.address + field.addrLow, value >>> 0, true);
    v.setUint32(this.address + field.addrHigh, Math.floor(value / 2 ** 32) >>> 0, true);
  }
}

/** A validated RX descriptor, as the NIC returned it or as the driver gives it. */
export interface RxDescriptorRepr {
  readonly own: boolean;
  readonly endOfRing: boolean;
  readonly firstSegment: boolean;
  readonly lastSegment: boolean;
  /** Given to the NIC: the buffer size; returned: the frame length including the 4-byte FCS. */
  readonly length: number;
  readonly multicast: boolean;
  readonly physicalMatch: boolean;
  readonly broadcast: boolean;
  readonly error: boolean;
  readonly runt: boolean;
  readonly crcError: boolean;
  readonly watchdog: boolean;
  readonly fifoOverflow: boolean;
  readonly bufferAddress: number;
  /** The VLAN tag the NIC stripped (host order), or undefined. */
  readonly vlanTag: number | undefined;
}

/** Parses an RX descriptor (never throws: every bit pattern has a meaning). */
export function parseRxDescriptor(view: DescriptorView): RxDescriptorRepr {
  const o1 = view.opts1;
  const o2 = view.opts2;
  return {
    own: (o1 & DescOwn) !== 0,
    endOfRing: (o1 & RingEnd) !== 0,
    firstSegment: (o1 & FirstFrag) !== 0,
    lastSegment: (o1 & LastFrag) !== 0,
    length: o1 & RX_LENGTH_MASK,
    multicast: (o1 & RxMAR) !== 0,
    physicalMatch: (o1 & RxPAM) !== 0,
    broadcast: (o1 & RxBAR) !== 0,
    error: (o1 & RxRES) !== 0,
    runt: (o1 & RxRUNT) !== 0,
    crcError: (o1 & RxCRC) !== 0,
    watchdog: (o1 & RxRWT) !== 0,
    fifoOverflow: (o1 & RxFOVF) !== 0,
    bufferAddress: view.bufferAddress,
    vlanTag: o2 & RxVlanTag ? ((o2 & 0xff) << 8) | ((o2 >> 8) & 0xff) : undefined,
  };
}

/** A validated TX descriptor. */
export interface TxDescriptorRepr {
  readonly own: boolean;
  readonly endOfRing: boolean;
  readonly firstSegment: boolean;
  readonly lastSegment: boolean;
  /** This segment's length in bytes. */
  readonly length: number;
  readonly bufferAddress: number;
}

/** Parses a TX descriptor. */
export function parseTxDescriptor(view: DescriptorView): TxDescriptorRepr {
  const o1 = view.opts1;
  return {
    own: (o1 & DescOwn) !== 0,
    endOfRing: (o1 & RingEnd) !== 0,
    firstSegment: (o1 & FirstFrag) !== 0,
    lastSegment: (o1 & LastFrag) !== 0,
    length: o1 & TX_LENGTH_MASK,
    bufferAddress: view.bufferAddress,
  };
}

/** Writes a TX descriptor: address and opts2 first, opts1 (with OWN) last. */
export function emitTxDescriptor(repr: TxDescriptorRepr, view: DescriptorView): void {
  view.bufferAddress = repr.bufferAddress;
  view.opts2 = 0;
  view.opts1 =
    (repr.own ? DescOwn : 0) |
    (repr.endOfRing ? RingEnd : 0) |
    (repr.firstSegment ? FirstFrag : 0) |
    (repr.lastSegment ? LastFrag : 0) |
    (repr.length & TX_LENGTH_MASK);
}

/** Writes an RX descriptor as a driver arms it: address first, then opts1 = OWN | EOR? | size. */
export function emitRxDescriptor(
  repr: Pick<RxDescriptorRepr, 'own' | 'endOfRing' | 'length' | 'bufferAddress'>,
  view: DescriptorView,
): void {
  view.bufferAddress = repr.bufferAddress;
  view.opts2 = 0;
  view.opts1 = (repr.own ? DescOwn : 0) | (repr.endOfRing ? RingEnd : 0) | (repr.length & RX_LENGTH_MASK);
}
