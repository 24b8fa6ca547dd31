/**
 * Developer probe: A/B of core receive-coalescing settings on one exonet e2e side, interleaved so that the
 * machine's other load hits both alike. Usage: tsx e2e-ab.ts receivers rounds frames[:micros[:perTask[:stageMin[:busyPollMicros]]]] ...
 * (stageMin: from how many tasks the core stages small frames; 'off' never; busyPollMicros: the tasks'
 * poller's busy polling, default 500).
 */
import { openExonetSide } from '../src/exonet/exonet-side.ts';

const n = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 4);
const settings = process.argv.slice(4);
if (settings.length === 0) settings.push('0', '8192');
const side = await openExonetSide({
  receivers: n,
  workers: process.env.WORKERS ? Number(process.env.WORKERS) : undefined,
  frameCount: process.env.FRAMES ? Number(process.env.FRAMES) : undefined,
});
const res = new Map<string, { pps: number[]; cpu: number[]; driver: number[] }>(
  settings.map((s) => [s, { pps: [], cpu: [], driver: [] }]),
);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
try {
  for (let r = 0; r < rounds; r++) {
    for (const f of settings) {
      const [frames, micros, perTask, stage, busy] = f.split(':');
      side.setBusyPoll(Number(busy ?? 500));
      side.core.setRxCoalescing(Number(frames), Number(micros) || undefined, Number(perTask) || undefined);
      side.core.setRxStaging(stage === 'off' ? Number.POSITIVE_INFINITY : Number(stage ?? 256));
      await side.measure(0.1, 0);
      const e = await side.measure(0.6, 0.2);
      res.get(f)!.pps.push(e.pps);
      res.get(f)!.cpu.push(e.cpuMicrosPerDatagram);
      res.get(f)!.driver.push(e.driverCpuMicrosPerDatagram);
    }
  }
  for (const [f, v] of res) {
    console.log(
      `${n} receivers, coalesce ${f}: median ${Math.round(med(v.pps))} pps (max ${Math.round(Math.max(...v.pps))}), CPU ${med(v.cpu).toFixed(2)} µs/datagram (driver thread ${med(v.driver).toFixed(2)})`,
    );
  }
} finally {
  await side.close();
}
