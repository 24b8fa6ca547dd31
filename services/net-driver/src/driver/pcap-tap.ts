import type { PcapWriter } from '../wire/pcap-file.ts';
import type { NetDevice, RxSink } from './net-device.ts';
import { DeviceWrapper } from './wrapper.ts';

/**
 * A wrapper that writes every frame received, and every frame committed for transmission, to a pcap file
 * (smoltcp's PcapWriter). Staged frames are captured when committed, never when discarded or aborted, so the
 * capture shows what reached the device. For debugging: it copies each frame.
 */
export class PcapTapDevice extends DeviceWrapper {
  private staged: Uint8Array[] = [];
  private lentBuffer: Uint8Array | null = null;

  constructor(
    inner: NetDevice,
    private readonly writer: PcapWriter,
    private readonly directions: { readonly rx?: boolean; readonly tx?: boolean } = { rx: true, tx: true },
  ) {
    super(inner);
  }

  override receive(sink: RxSink, budget?: number): number {
    if (!this.directions.rx) return this.inner.receive(sink, budget);
    return this.inner.receive((frame, length, words) => {
      this.writer.write(frame, 0, length);
      sink(frame, length, words);
    }, budget);
  }

  override txAcquire(): Uint8Array | null {
    this.lentBuffer = this.inner.txAcquire();
    return this.lentBuffer;
  }

  override txSubmit(length: number): void {
    const buf = this.lentBuffer;
    this.inner.txSubmit(length);
    if (this.directions.tx && buf) this.staged.push(buf.slice(0, length));
    this.lentBuffer = null;
  }

  override txDiscard(): void {
    this.lentBuffer = null;
    this.inner.txDiscard();
  }

  override transmit(frame: Uint8Array): boolean {
    const ok = this.inner.transmit(frame);
    if (ok && this.directions.tx) this.staged.push(frame.slice());
    return ok;
  }

  override txCommit(): number {
    const n = this.inner.txCommit();
    for (const f of this.staged) this.writer.write(f);
    this.staged = [];
    return n;
  }

  override txAbort(): number {
    this.staged = [];
    return this.inner.txAbort();
  }
}
