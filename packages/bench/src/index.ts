/**
 * exonet against modern Linux, side by side in one run.
 * @packageDocumentation
 */
export { buildLinuxHarness, type LinuxReceiveMode, type LinuxRunResult, runLinuxHarness } from './linux/harness.ts';
export { type MachineInfo, machine } from './report/machine.ts';
