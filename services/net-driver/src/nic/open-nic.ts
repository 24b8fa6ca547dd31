import type { Rtl8169Driver, Rtl8169DriverOptions } from '../driver/r8169.ts';
import { openWire } from '../wire/spec.ts';
import type { FrameSource, Wire } from '../wire/wire.ts';
import { createInThreadNic, DEFAULT_MAC } from './in-thread.ts';
import { createWorkerNic } from './worker-nic.ts';

/** Options of {@link openNic}. */
export interface OpenNicOptions extends Omit<Rtl8169DriverOptions, 'mmio' | 'memory' | 'irq'> {
  /** A wire specification (wire/spec.ts), or, in-thread only, a wire object (e.g. one end of a Cable). */
  readonly wire: string | Wire;
  /** Run the model in a worker thread (default false: in the caller's thread). */
  readonly worker?: boolean;
  readonly mac?: Uint8Array;
  readonly memoryBytes?: number;
}

/** An RTL8169 model and its (not yet started) driver, however they were built. */
export interface OpenedNic {
  /** The driver: a NetDevice. */
  readonly driver: Rtl8169Driver;
  /** True when the model runs in a worker thread. */
  readonly inWorker: boolean;
  /**
   * Lets a frame source on the wire (generator, pcap replay) deliver up to `max` frames, one at a time and
   * only while a descriptor is free (flow control). In-thread the caller drives sources with it; in a worker
   * the first call starts the sources, which then run by themselves, and it returns 0. Call it once the
   * driver is up: a frame that arrives between RX enable and the receive filter is dropped, as on the chip.
   */
  pump(max: number): number;
  close(): Promise<void>;
}

/** Builds a model and its driver on a wire, in this thread or with the model in a worker thread. */
export async function openNic(options: OpenNicOptions): Promise<OpenedNic> {
  const { wire, worker, ...rest } = options;
  const mac = options.mac ?? DEFAULT_MAC;
  if (worker) {
    if (typeof wire !== 'string') throw new TypeError('a model in a worker opens its wire from a specification');
    const nic = await createWorkerNic({ ...rest, wire, mac });
    let pumping = false;
    const pump = () => {
      if (!pumping) {
        pumping = true;
        nic.setPumping('flow');
      }
      return 0;
    };
    return { driver: nic.driver, inWorker: true, pump, close: () => nic.close() };
  }
  const w = typeof wire === 'string' ? await openWire(wire, { mac }) : wire;
  const nic = createInThreadNic({ ...rest, wire: w, mac });
  const source = 'pump' in w ? (w as unknown as FrameSource) : undefined;
  return {
    driver: nic.driver,
    inWorker: false,
    pump(max) {
      if (!source) return 0;
      let n = 0;
      while (n < max && nic.model.rxReady && source.pump(1) > 0) n++;
      return n;
    },
    close: () => nic.close(),
  };
}
