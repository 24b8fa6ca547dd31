/**
 * Developer probe: CPU profile of the driver's thread during one measurement of the exonet e2e side
 * (setup excluded). Usage: tsx e2e-profile.ts [receivers] [seconds] [out.cpuprofile]
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { openExonetSide } from '../src/exonet/exonet-side.ts';

const n = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 2);
const out = process.argv[4] ?? '/tmp/driver.cpuprofile';
const side = await openExonetSide({
  receivers: n,
  workers: process.env.WORKERS ? Number(process.env.WORKERS) : undefined,
});
if (process.env.COALESCE) side.core.setRxCoalescing(Number(process.env.COALESCE));
const session = new Session();
session.connect();
try {
  await side.measure(0.5, 0.3);
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  const e = await side.measure(seconds, 0);
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(out, JSON.stringify(profile));
  console.log(`${n} receivers: ${Math.round(e.pps)} pps, CPU ${e.cpuMicrosPerDatagram.toFixed(2)} µs/datagram`);
} finally {
  session.disconnect();
  await side.close();
}
