import { LocalInterruptLine } from '../driver/interrupt-line.ts';
import { Rtl8169Driver, type Rtl8169DriverOptions } from '../driver/r8169.ts';
import type { Wire } from '../wire/wire.ts';
import { DirectMmio } from './mmio.ts';
import { PhysicalMemory } from './physical-memory.ts';
import { Rtl8169Model } from './rtl8169.ts';

/** The default station address: Realtek's OUI 00:e0:4c, then 69:81:69. */
export const DEFAULT_MAC = Uint8Array.of(0x00, 0xe0, 0x4c, 0x69, 0x81, 0x69);

/** Options of {@link createInThreadNic}. */
export interface InThreadNicOptions extends Omit<Rtl8169DriverOptions, 'mmio' | 'memory' | 'irq'> {
  /** The wire the NIC is plugged into (none: no carrier). */
  readonly wire?: Wire;
  /** EEPROM MAC (default {@link DEFAULT_MAC}). */
  readonly mac?: Uint8Array;
  /** Physical memory size in bytes (default: enough for the rings and buffers, rounded up). */
  readonly memoryBytes?: number;
  /** Write the FCS bytes after received frames (default true). */
  readonly writeFcs?: boolean;
}

/** A model and its driver in one thread. */
export interface InThreadNic {
  readonly memory: PhysicalMemory;
  readonly model: Rtl8169Model;
  readonly driver: Rtl8169Driver;
  /** Stops the driver, unplugs and closes the wire. */
  close(): Promise<void>;
}

/** Bytes of physical memory the driver needs for its rings and buffers, plus slack. */
export function memoryFor(rx: number, tx: number, bufferSize: number): number {
  const need = 0x1000 + (rx + tx) * (16 + bufferSize + 8) + 2 * 256 + 65536;
  return Math.ceil(need / 4096) * 4096;
}

/**
 * Builds an RTL8169 model and its driver in the calling thread (the fast path): MMIO is a direct call, the
 * interrupt line a microtask. The driver is not started.
 */
export function createInThreadNic(options: InThreadNicOptions = {}): InThreadNic {
  const memory = new PhysicalMemory(
    options.memoryBytes ?? memoryFor(options.rxRingSize ?? 256, options.txRingSize ?? 256, options.bufferSize ?? 2048),
  );
  const irq = new LocalInterruptLine();
  const model = new Rtl8169Model({
    memory,
    mac: options.mac ?? DEFAULT_MAC,
    onInterrupt: irq.assert,
    writeFcs: options.writeFcs,
  });
  const { wire, mac: _mac, memoryBytes: _m, writeFcs: _w, ...driverOptions } = options;
  if (wire) model.attachWire(wire);
  const driver = new Rtl8169Driver({ ...driverOptions, mmio: new DirectMmio(model), memory, irq });
  return {
    memory,
    model,
    driver,
    async close() {
      driver.stop();
      irq.close();
      model.attachWire(undefined);
      await wire?.close();
    },
  };
}
