/**
 * `exonet bench e2e`: 64-byte UDP datagrams from the wire to the application for 1, 100 and 1,000 receivers,
 * exonet against Linux UDP sockets and Linux AF_PACKET, interleaved in one run (docs/benchmarks.md).
 * @module
 */

import { type ExonetRunResult, openExonetSide } from '../exonet/exonet-side.ts';
import { buildLinuxHarness, type LinuxReceiveMode, runLinuxHarness } from '../linux/harness.ts';
import { machine, median } from '../report/machine.ts';

/** Options of a benchmark run (as packages/cli's BenchmarkOptions). */
interface Options {
  readonly quick: boolean;
  readonly log: (line: string) => void;
}

const BASE_PORT = 20_000;

/** One Linux measurement: datagrams a second and CPU µs (receiver + sender) per datagram. */
interface LinuxFigure {
  readonly pps: number;
  readonly cpuUs: number;
}

async function linux(binary: string, mode: LinuxReceiveMode, n: number, seconds: number): Promise<LinuxFigure | null> {
  try {
    const r = await runLinuxHarness(binary, mode, n, seconds, BASE_PORT);
    return { pps: r.pps, cpuUs: (r.cpuSeconds * 1e6) / Math.max(r.received, 1) };
  } catch {
    // AF_PACKET needs CAP_NET_RAW: without it that side is reported as null rather than failing the run.
    return null;
  }
}

const round = (x: number | null): number | null => (x === null ? null : Math.round(x));
const us = (x: number | null): number | null => (x === null ? null : Number(x.toFixed(2)));
const ratio = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : Number((a / b).toFixed(2));

/**
 * The receivers counts to run: EXONET_BENCH_E2E_RECEIVERS (comma-separated, e.g. "1000") narrows a run to
 * some of them while iterating; by default 1, 100 and 1,000 (1 and 4 with --quick).
 */
function receiversToRun(quick: boolean): number[] {
  const env = process.env.EXONET_BENCH_E2E_RECEIVERS;
  if (env !== undefined && env.trim() !== '') {
    const list = env.split(',').map((x) => Number(x.trim()));
    if (list.every((x) => Number.isInteger(x) && x >= 1 && x <= 10_000)) return list;
    throw new Error(`EXONET_BENCH_E2E_RECEIVERS: expected receivers counts like "1,100,1000", got "${env}"`);
  }
  return quick ? [1, 4] : [1, 100, 1_000];
}

export async function run(options: Options): Promise<Record<string, unknown>> {
  const receivers = receiversToRun(options.quick);
  const repetitions = options.quick ? 1 : 5;
  const seconds = options.quick ? 0.2 : 1;
  const warmup = options.quick ? 0.05 : 0.3;
  const binary = await buildLinuxHarness();
  const exonet: number[] = [];
  const udp: (number | null)[] = [];
  const afPacket: (number | null)[] = [];
  const exonetCpu: number[] = [];
  const udpCpu: (number | null)[] = [];
  const afPacketCpu: (number | null)[] = [];
  const details: ExonetRunResult[] = [];
  for (const n of receivers) {
    const t0 = performance.now();
    const side = await openExonetSide({ receivers: n, basePort: BASE_PORT });
    options.log(`e2e ${n} receivers: exonet side up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const runs: { exonet: ExonetRunResult; udp: LinuxFigure | null; afPacket: LinuxFigure | null }[] = [];
    try {
      // The three sides take turns, so a burst of load from elsewhere on the machine hits all of them alike.
      for (let r = 0; r < repetitions; r++) {
        const e = await side.measure(seconds, warmup);
        const u = await linux(binary, 'udp', n, seconds);
        const a = await linux(binary, 'af_packet', n, seconds);
        runs.push({ exonet: e, udp: u, afPacket: a });
        options.log(
          `e2e ${String(n).padStart(5)} receivers, run ${r + 1}/${repetitions}: exonet ${Math.round(e.pps)} pps, ` +
            `Linux UDP ${u === null ? '-' : Math.round(u.pps)} pps, AF_PACKET ${a === null ? '-' : Math.round(a.pps)} pps; ` +
            `CPU per datagram: exonet ${e.cpuMicrosPerDatagram.toFixed(2)} µs, Linux UDP ${u === null ? '-' : u.cpuUs.toFixed(2)} µs, ` +
            `AF_PACKET ${a === null ? '-' : a.cpuUs.toFixed(2)} µs`,
        );
      }
    } finally {
      await side.close();
    }
    const mid = runs.map((x) => x.exonet).sort((a, b) => a.pps - b.pps)[runs.length >> 1];
    details.push(mid);
    exonet.push(Math.round(median(runs.map((x) => x.exonet.pps))));
    exonetCpu.push(median(runs.map((x) => x.exonet.cpuMicrosPerDatagram)));
    const u = runs.map((x) => x.udp).filter((x): x is LinuxFigure => x !== null);
    const a = runs.map((x) => x.afPacket).filter((x): x is LinuxFigure => x !== null);
    udp.push(u.length > 0 ? round(median(u.map((x) => x.pps))) : null);
    afPacket.push(a.length > 0 ? round(median(a.map((x) => x.pps))) : null);
    udpCpu.push(u.length > 0 ? median(u.map((x) => x.cpuUs)) : null);
    afPacketCpu.push(a.length > 0 ? median(a.map((x) => x.cpuUs)) : null);
  }
  const last = receivers.length - 1;
  options.log(
    `at ${receivers[last]} receivers: exonet ${ratio(exonet[last], udp[last]) ?? '-'}x Linux UDP, ` +
      `${ratio(exonet[last], afPacket[last]) ?? '-'}x Linux AF_PACKET`,
  );
  return {
    receivers,
    exonet_pps: exonet,
    linux_udp_pps: udp,
    linux_af_packet_pps: afPacket,
    exonet_vs_linux_udp: receivers.map((_, i) => ratio(exonet[i], udp[i])),
    exonet_vs_linux_af_packet: receivers.map((_, i) => ratio(exonet[i], afPacket[i])),
    // CPU per datagram: what the machine's other load does not distort (each side is charged only for the CPU
    // time it got). The ratios say how many times more CPU Linux needs per datagram than exonet.
    exonet_cpu_us_per_datagram: exonetCpu.map(us),
    linux_udp_cpu_us_per_datagram: udpCpu.map(us),
    linux_af_packet_cpu_us_per_datagram: afPacketCpu.map(us),
    linux_udp_cpu_vs_exonet: receivers.map((_, i) => ratio(udpCpu[i], exonetCpu[i])),
    linux_af_packet_cpu_vs_exonet: receivers.map((_, i) => ratio(afPacketCpu[i], exonetCpu[i])),
    repetitions,
    seconds_per_run: seconds,
    frame_bytes: 64,
    exonet_detail: details.map((d) => ({
      workers: d.workers,
      offered_pps: Math.round(d.offered / d.seconds),
      nic_missed: d.nicMissed,
      task_queue_full: d.taskQueueFull,
      corrupt: d.corrupt,
      cpu_us_per_datagram: Number(d.cpuMicrosPerDatagram.toFixed(2)),
      driver_thread_cpu_us_per_datagram: Number.isFinite(d.driverCpuMicrosPerDatagram)
        ? Number(d.driverCpuMicrosPerDatagram.toFixed(2))
        : null,
    })),
    machine: machine(),
  };
}
