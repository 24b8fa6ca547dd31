/**
 * RTL8169 model, its driver, and the exokernel packet path: verified grants, demux, layered TX filtering.
 *
 * Folders follow the data path: `wire/` (what the NIC's PHY is plugged into), `nic/` (the RTL8169 model and
 * physical memory), `driver/` (the r8169 driver and the driver-side interface {@link NetDevice}).
 * @packageDocumentation
 */

export { Conntrack, LINUX_TIMEOUTS, TcpState } from './core/conntrack.ts';
export { type Demux, LinearDemux } from './core/demux.ts';
export { IndexedDemux, mayOverlap } from './core/demux-index.ts';
export { type AttachRequest, type CoreCounters, type CoreOptions, ExokernelCore } from './core/exokernel.ts';
export { Firewall, type FirewallConfig, FirewallConfigError, type FirewallRuleConfig } from './core/firewall.ts';
export { CoreRefusal, GrantTable, type InstalledGrant, type TaskIdentity } from './core/grant-table.ts';
export { type TaskCounters, TaskSession } from './core/task-session.ts';
export { FaultInjectorDevice, type FaultOptions } from './driver/fault-injector.ts';
export { type InterruptLine, LocalInterruptLine } from './driver/interrupt-line.ts';
export { LoopbackDevice } from './driver/loopback.ts';
export type {
  DeviceCapabilities,
  DeviceCounters,
  DeviceEvent,
  LinkState,
  NetDevice,
  RxSink,
} from './driver/net-device.ts';
export { zeroCounters } from './driver/net-device.ts';
export { PcapTapDevice } from './driver/pcap-tap.ts';
export { Rtl8169Driver, type Rtl8169DriverOptions } from './driver/r8169.ts';
export { DeviceWrapper } from './driver/wrapper.ts';
export { ERROR_CODES, type ErrorCode, ExoNetDriverError, NicError, WireError } from './errors.ts';
export { createInThreadNic, DEFAULT_MAC, type InThreadNic, type InThreadNicOptions } from './nic/in-thread.ts';
export { DirectMmio, type Mmio, type MmioTarget } from './nic/mmio.ts';
export { type OpenedNic, type OpenNicOptions, openNic } from './nic/open-nic.ts';
export { PhysicalMemory } from './nic/physical-memory.ts';
export {
  type ModelStats,
  Rtl8169Model,
  type Rtl8169ModelOptions,
  TALLY_LAYOUT,
  type TallyCounters,
} from './nic/rtl8169.ts';
export { createWorkerNic, type WorkerNic, type WorkerNicOptions } from './nic/worker-nic.ts';
export {
  type AttachRefusalCode,
  type AttachSocket,
  type AttachSocketOptions,
  listenForTasks,
  parsePrincipalMap,
  passwdPrincipals,
} from './service/attach-socket.ts';
export { DriverService, type DriverServiceOptions, type DriverStatus } from './service/driver-service.ts';
export { Cable, LoopbackWire, NullWire } from './wire/cable.ts';
export { checkFrame, TrafficGenerator, type TrafficGeneratorOptions, writeSequencedFrame } from './wire/generator.ts';
export { PcapReader, type PcapRecord, PcapWriter } from './wire/pcap-file.ts';
export { PcapWire } from './wire/pcap-wire.ts';
export { openWire, parseWireSpec, WIRE_SPEC_FORMS, type WireSpec } from './wire/spec.ts';
export { UdpWire } from './wire/udp.ts';
export {
  type FrameSource,
  MIN_WIRE_FRAME,
  padShortFrame,
  WIRE_FCS_BAD,
  type Wire,
  type WirePort,
} from './wire/wire.ts';
