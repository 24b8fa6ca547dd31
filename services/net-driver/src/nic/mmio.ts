import { NicError } from '../errors.ts';
import { MMIO_SIZE } from './registers.ts';

/** Width of an MMIO access in bytes. */
export type AccessWidth = 1 | 2 | 4;

/**
 * The driver's only path to the chip's registers, as readb/readw/readl and writeb/writew/writel are in Linux.
 * Two implementations: a direct call into a model in the same thread, and posted writes through shared memory
 * to a model in a worker thread (worker-mmio.ts).
 */
export interface Mmio {
  read8(offset: number): number;
  read16(offset: number): number;
  read32(offset: number): number;
  write8(offset: number, value: number): void;
  write16(offset: number, value: number): void;
  write32(offset: number, value: number): void;
}

/** What a device model offers to the bus: decoded register reads and writes. */
export interface MmioTarget {
  mmioRead(offset: number, width: AccessWidth): number;
  mmioWrite(offset: number, width: AccessWidth, value: number): void;
}

/** Throws EXO_ERR_NIC_REGISTER unless `offset` is a naturally aligned access inside the window. */
export function checkAccess(offset: number, width: AccessWidth): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + width > MMIO_SIZE || offset % width !== 0) {
    throw new NicError(
      'EXO_ERR_NIC_REGISTER',
      `expected a ${width}-byte aligned register offset inside the ${MMIO_SIZE}-byte window, got ${offset}`,
    );
  }
}

/** MMIO straight into a model in the same thread (the fast path). */
export class DirectMmio implements Mmio {
  constructor(private readonly target: MmioTarget) {}
  read8(offset: number): number {
    return this.target.mmioRead(offset, 1);
  }
  read16(offset: number): number {
    return this.target.mmioRead(offset, 2);
  }
  read32(offset: number): number {
    return this.target.mmioRead(offset, 4);
  }
  write8(offset: number, value: number): void {
    this.target.mmioWrite(offset, 1, value);
  }
  write16(offset: number, value: number): void {
    this.target.mmioWrite(offset, 2, value);
  }
  write32(offset: number, value: number): void {
    this.target.mmioWrite(offset, 4, value);
  }
}
