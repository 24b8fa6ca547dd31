/** GET /healthz and GET /metrics. */
import type { FastifyInstance } from 'fastify';
import { ServerError } from '../../errors.ts';
import type { AppContext } from '../context.ts';

export async function healthRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { rateLimit: false },
      schema: { summary: 'Liveness and readiness (store reachable, a signing key active)', tags: ['operations'] },
    },
    async () => {
      try {
        await ctx.store.ping();
      } catch (err) {
        throw new ServerError('EXO_ERR_STORE_UNAVAILABLE', err instanceof Error ? err.message : undefined);
      }
      const key = ctx.keys.activeKey();
      return { status: 'ok', store: ctx.store.kind, kid: key.kid };
    },
  );
  app.get(
    '/metrics',
    { config: { rateLimit: false }, schema: { summary: 'Prometheus metrics', tags: ['operations'] } },
    async (_req, reply) =>
      reply.header('content-type', ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
  );
}
