import { DESC_SIZE, DescOwn, RingEnd } from '../src/nic/descriptor.ts';
import { DirectMmio } from '../src/nic/mmio.ts';
import { PhysicalMemory } from '../src/nic/physical-memory.ts';
import * as R from '../src/nic/registers.ts';
import { Rtl8169Model } from '../src/nic/rtl8169.ts';

export const MAC = Uint8Array.of(0x00, 0xe0, 0x4c, 0x00, 0x00, 0x01);
export const PEER = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);
export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** An Ethernet frame: dst, src, EtherType 0x88b5 (local experimental), payload = seq (u32 BE) then bytes. */
export function frame(dst: Uint8Array, length = 60, seq = 0, src: Uint8Array = PEER): Uint8Array {
  const f = new Uint8Array(length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  if (length >= 18) new DataView(f.buffer).setUint32(14, seq >>> 0);
  for (let i = 18; i < length; i++) f[i] = (seq + i) & 0xff;
  return f;
}

/** A bare model with its MMIO, for register-level tests; rings are set up by hand. */
export function bareModel(opts: { carrier?: boolean } = {}) {
  const memory = new PhysicalMemory(1 << 20);
  let irqs = 0;
  const model = new Rtl8169Model({ memory, mac: MAC, onInterrupt: () => irqs++ });
  const io = new DirectMmio(model);
  if (opts.carrier ?? true) model.setCarrier(true);
  io.write16(R.IntrStatus, 0xffff);
  const transmitted: Uint8Array[] = [];
  model.attachWire({
    description: 'capture',
    attach: () => {},
    transmit: (d, o, l) => transmitted.push(d.slice(o, o + l)),
    close: async () => {},
  });
  return {
    memory,
    model,
    io,
    transmitted,
    irqs: () => irqs,
    /** Builds a ring of n descriptors each with a buffer of `size` bytes; returns base and buffer addresses. */
    ring(n: number, size: number, own: boolean) {
      const base = memory.alloc(n * DESC_SIZE, 256);
      const bufs: number[] = [];
      for (let i = 0; i < n; i++) {
        const b = memory.alloc(size, 8);
        bufs.push(b);
        const d = base + i * DESC_SIZE;
        memory.view.setUint32(d + 8, b, true);
        memory.view.setUint32(d + 12, 0, true);
        memory.view.setUint32(d, ((own ? DescOwn : 0) | (i === n - 1 ? RingEnd : 0) | (own ? size : 0)) >>> 0, true);
      }
      return { base, bufs };
    },
    opts1(addr: number) {
      return memory.view.getUint32(addr, true);
    },
  };
}
