import { NicError } from '../errors.ts';

const FIRST_ADDRESS = 0x1000;

/**
 * The machine's "physical memory": one SharedArrayBuffer that the driver allocates DMA areas in (descriptor
 * rings, packet buffers) and the NIC model reads and writes by physical address. Because it is shared, the
 * model may run in another thread; descriptor opts1 words are then accessed with Atomics (see descriptor.ts).
 *
 * Physical address = byte offset into the buffer. The first page is never handed out, so a zero or small
 * address in a descriptor is recognisably a driver bug (the model reports it as a DMA error, not a crash).
 */
export class PhysicalMemory {
  /** The shared backing store (pass it to a model worker). */
  readonly buffer: SharedArrayBuffer;
  /** Byte view of all of memory. */
  readonly bytes: Uint8Array;
  /** 32-bit view for atomic access to descriptor words (index = address >> 2). */
  readonly words: Int32Array;
  /** Little-endian field access. */
  readonly view: DataView;
  readonly size: number;
  private next = FIRST_ADDRESS;

  /** Lowest address the allocator hands out. */
  static readonly FIRST_ADDRESS = FIRST_ADDRESS;

  /**
   * @param sizeOrBuffer size in bytes (a multiple of 4096, at most 1 GiB) or an existing shared buffer (in
   *   a worker, the one the driver side created)
   */
  constructor(sizeOrBuffer: number | SharedArrayBuffer) {
    if (typeof sizeOrBuffer === 'number') {
      if (!Number.isInteger(sizeOrBuffer) || sizeOrBuffer < 8192 || sizeOrBuffer > 2 ** 30 || sizeOrBuffer % 4096) {
        throw new NicError(
          'EXO_ERR_NIC_MEMORY',
          `expected a memory size that is a multiple of 4096 between 8192 and 2^30, got ${sizeOrBuffer}`,
        );
      }
      this.buffer = new SharedArrayBuffer(sizeOrBuffer);
    } else {
      if (!(sizeOrBuffer instanceof SharedArrayBuffer) || sizeOrBuffer.byteLength % 4096) {
        throw new NicError('EXO_ERR_NIC_MEMORY', 'expected a SharedArrayBuffer whose size is a multiple of 4096');
      }
      this.buffer = sizeOrBuffer;
    }
    this.size = this.buffer.byteLength;
    this.bytes = new Uint8Array(this.buffer);
    this.words = new Int32Array(this.buffer);
    this.view = new DataView(this.buffer);
  }

  /**
   * Allocates a DMA area (never freed: drivers allocate their rings and buffers once, at probe time).
   * @param size bytes
   * @param align power of two (descriptor rings need 256)
   * @returns the physical address
   */
  alloc(size: number, align = 8): number {
    if (!Number.isInteger(size) || size <= 0) {
      throw new NicError('EXO_ERR_NIC_MEMORY', `expected a positive integer size, got ${size}`);
    }
    if (!Number.isInteger(align) || align < 1 || align & (align - 1)) {
      throw new NicError('EXO_ERR_NIC_MEMORY', `expected a power-of-two alignment, got ${align}`);
    }
    const addr = (this.next + align - 1) & ~(align - 1);
    if (addr + size > this.size) {
      throw new NicError(
        'EXO_ERR_NIC_MEMORY',
        `out of physical memory: ${size} bytes requested, ${Math.max(0, this.size - addr)} left of ${this.size}`,
      );
    }
    this.next = addr + size;
    return addr;
  }

  /** Bytes still available to alloc (ignoring alignment). */
  get free(): number {
    return this.size - this.next;
  }

  /** True when [addr, addr + length) lies inside memory and above the reserved first page. */
  contains(addr: number, length: number): boolean {
    return addr >= FIRST_ADDRESS && length >= 0 && addr + length <= this.size;
  }
}
