import Fastify, { type FastifyInstance } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import type { DriverService } from './driver-service.ts';

/**
 * The driver's operator endpoint: GET /status (what `exonet driver status` prints), GET /metrics
 * (Prometheus text: counters per task and per layer), GET /healthz. It listens on loopback by default: it
 * reveals which principals run which filters.
 */
export async function startAdminHttp(
  driver: DriverService,
  listen: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65_535) throw new TypeError(`--listen: expected HOST:PORT, got "${listen}"`);
  const app: FastifyInstance = Fastify({ logger: false });
  const registry = new Registry();
  const core = new Gauge({
    name: 'exonet_driver_frames',
    help: 'Frames through the exokernel core by counter (monotonic)',
    labelNames: ['counter'],
    registers: [registry],
  });
  const task = new Gauge({
    name: 'exonet_driver_task_frames',
    help: 'Per task counters (monotonic): deliveries, queue-full drops, sends and refusals by layer',
    labelNames: ['task', 'principal', 'counter'],
    registers: [registry],
  });
  const grants = new Gauge({
    name: 'exonet_driver_grants',
    help: 'Installed grants by direction and layer',
    labelNames: ['dir', 'layer'],
    registers: [registry],
  });
  const refusals = new Gauge({
    name: 'exonet_driver_grant_refusals',
    help: 'Grant installs refused, by reason code (monotonic)',
    labelNames: ['code'],
    registers: [registry],
  });
  const suspended = new Gauge({
    name: 'exonet_driver_suspended',
    help: '1 while the driver fails closed (revocation feed stale)',
    registers: [registry],
  });
  app.get('/healthz', async () => ({ ok: true, driver: driver.id, suspended: driver.core.suspended() }));
  app.get('/status', async () => driver.status());
  app.get('/metrics', async (_req, reply) => {
    const s = driver.status();
    core.reset();
    task.reset();
    grants.reset();
    refusals.reset();
    for (const [k, v] of Object.entries(s.counters)) core.set({ counter: k }, v);
    for (const t of s.tasks) {
      for (const [k, v] of Object.entries(t.counters))
        task.set({ task: String(t.id), principal: t.principal, counter: k }, v);
      for (const g of t.grants) grants.inc({ dir: g.dir, layer: g.layer });
    }
    for (const [k, v] of Object.entries(s.refusals)) refusals.set({ code: k }, v);
    suspended.set(s.suspended ? 1 : 0);
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  await app.listen({ host: m[1], port: Number(m[2]) });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : Number(m[2]);
  return { url: `http://${m[1]}:${port}`, close: () => app.close() };
}
