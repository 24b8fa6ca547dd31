import type { Wire, WirePort } from './wire.ts';

/** One end of a {@link Cable}. */
class CableEnd implements Wire {
  port: WirePort | undefined;
  peer!: CableEnd;
  constructor(
    readonly description: string,
    private readonly cable: Cable,
  ) {}

  attach(port: WirePort): void {
    this.port = port;
    if (this.cable.plugged) port.setCarrier(true);
  }

  transmit(data: Uint8Array, offset: number, length: number): void {
    const peer = this.peer.port;
    if (!this.cable.plugged || !peer) return;
    this.cable.frames++;
    // The receiving NIC copies before deliver returns, so a view is enough.
    peer.deliver(data.subarray(offset, offset + length));
  }

  async close(): Promise<void> {
    this.port?.setCarrier(false);
    this.port = undefined;
  }
}

/**
 * A cable joining two NIC models in the same thread: what one sends, the other receives. Unplugging it drops
 * the carrier on both ends (LinkChg on both NICs).
 */
export class Cable {
  readonly a: Wire;
  readonly b: Wire;
  plugged = true;
  /** Frames carried, both directions. */
  frames = 0;
  private readonly ends: [CableEnd, CableEnd];

  constructor() {
    const a = new CableEnd('cable:a', this);
    const b = new CableEnd('cable:b', this);
    a.peer = b;
    b.peer = a;
    this.ends = [a, b];
    this.a = a;
    this.b = b;
  }

  /** Plugs the cable in or pulls it out: both NICs see the carrier change. */
  setPlugged(plugged: boolean): void {
    if (plugged === this.plugged) return;
    this.plugged = plugged;
    for (const end of this.ends) end.port?.setCarrier(plugged);
  }
}

/** A wire that sends every transmitted frame back to the same NIC (an external loopback plug). */
export class LoopbackWire implements Wire {
  readonly description = 'loopback';
  private port: WirePort | undefined;
  /** Copy buffer: the NIC's TX buffer must not be its own RX source while it DMAs. */
  private readonly scratch = new Uint8Array(16384);
  private readonly views = new Map<number, Uint8Array>();

  attach(port: WirePort): void {
    this.port = port;
    port.setCarrier(true);
  }

  transmit(data: Uint8Array, offset: number, length: number): void {
    if (!this.port) return;
    let view = this.views.get(length);
    if (!view) {
      view = this.scratch.subarray(0, length);
      if (this.views.size < 64) this.views.set(length, view);
    }
    view.set(data.subarray(offset, offset + length));
    this.port.deliver(view);
  }

  async close(): Promise<void> {
    this.port?.setCarrier(false);
    this.port = undefined;
  }
}

/** A wire to nowhere that counts what it is given (and has carrier). */
export class NullWire implements Wire {
  readonly description = 'null';
  frames = 0;
  bytes = 0;
  private port: WirePort | undefined;
  attach(port: WirePort): void {
    this.port = port;
    port.setCarrier(true);
  }
  transmit(_data: Uint8Array, _offset: number, length: number): void {
    this.frames++;
    this.bytes += length;
  }
  async close(): Promise<void> {
    this.port?.setCarrier(false);
    this.port = undefined;
  }
}
