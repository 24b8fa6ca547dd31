import type { DeviceCapabilities, DeviceCounters, DeviceEvent, LinkState, NetDevice, RxSink } from './net-device.ts';

/**
 * Base of wrapper devices (smoltcp's phy wrappers): forwards every call to the wrapped device; subclasses
 * override what they change.
 */
export abstract class DeviceWrapper implements NetDevice {
  constructor(protected readonly inner: NetDevice) {}
  get name(): string {
    return this.inner.name;
  }
  get capabilities(): DeviceCapabilities {
    return this.inner.capabilities;
  }
  get running(): boolean {
    return this.inner.running;
  }
  start(): void {
    this.inner.start();
  }
  stop(): void {
    this.inner.stop();
  }
  macAddress(): Uint8Array {
    return this.inner.macAddress();
  }
  link(): LinkState {
    return this.inner.link();
  }
  counters(): DeviceCounters {
    return this.inner.counters();
  }
  setReceiveFilter(filter: Parameters<NetDevice['setReceiveFilter']>[0]): void {
    this.inner.setReceiveFilter(filter);
  }
  setEventHandler(handler: ((event: DeviceEvent) => void) | null): void {
    this.inner.setEventHandler(handler);
  }
  receive(sink: RxSink, budget?: number): number {
    return this.inner.receive(sink, budget);
  }
  txAcquire(): Uint8Array | null {
    return this.inner.txAcquire();
  }
  txSubmit(length: number): void {
    this.inner.txSubmit(length);
  }
  txDiscard(): void {
    this.inner.txDiscard();
  }
  txCommit(): number {
    return this.inner.txCommit();
  }
  txAbort(): number {
    return this.inner.txAbort();
  }
  transmit(frame: Uint8Array): boolean {
    return this.inner.transmit(frame);
  }
}
