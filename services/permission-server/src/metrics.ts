/** Prometheus metrics of one server instance (its own registry, so several servers can share a process). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics } from './http/context.ts';

export function createMetrics(): Metrics & { readonly httpDuration: Histogram<'method' | 'route' | 'status'> } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'exonet_permission_server_' });
  return {
    registry,
    grants: new Counter({
      name: 'exonet_grants_total',
      help: 'grant requests by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    revocations: new Counter({
      name: 'exonet_revocations_total',
      help: 'revocations by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    sseClients: new Gauge({
      name: 'exonet_revocation_stream_clients',
      help: 'open revocation event streams',
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'exonet_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}
