/**
 * Developer probe: the exonet side of `exonet bench e2e` alone, for one receivers count, to iterate on
 * optimisations (run it under `flock /tmp/exonet-bench.lock`). Usage: tsx e2e-exonet.ts [receivers] [seconds] [runs]
 */
import { openExonetSide } from '../src/exonet/exonet-side.ts';

const n = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 1);
const runs = Number(process.argv[4] ?? 3);
const side = await openExonetSide({
  receivers: n,
  sharedRxFrames: process.env.SHARED_RX === undefined ? undefined : Number(process.env.SHARED_RX),
  busyPollMicros: process.env.BUSY_POLL === undefined ? undefined : Number(process.env.BUSY_POLL),
});
try {
  for (let r = 0; r < runs; r++) {
    const e = await side.measure(seconds, 0.3);
    console.log(
      `${n} receivers: ${Math.round(e.pps)} pps, CPU ${e.cpuMicrosPerDatagram.toFixed(2)} µs/datagram, driver ${e.driverCpuMicrosPerDatagram.toFixed(3)} µs/datagram, offered ${Math.round(e.offered / e.seconds)}, nic missed ${e.nicMissed}, queue full ${e.taskQueueFull}, corrupt ${e.corrupt}`,
    );
  }
} finally {
  await side.close();
}
