/** GET /.well-known/jwks.json, POST /v1/keys/rotate, GET /v1/keys. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { type AppContext, auditOf, requireAdmin } from '../context.ts';

export async function keyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/.well-known/jwks.json',
    {
      config: { rateLimit: false },
      schema: { summary: 'Public keys by kid, including keys of unexpired grants', tags: ['keys'] },
    },
    async (_req, reply) => reply.header('cache-control', 'public, max-age=30').send(ctx.keys.jwks()),
  );
  r.post(
    '/v1/keys/rotate',
    {
      onRequest: requireAdmin(ctx),
      schema: {
        summary: 'Start a key rotation (publish a new key before use)',
        tags: ['keys'],
        security: [{ bearer: [] }],
      },
    },
    async (req, reply) => {
      const kid = await ctx.keys.rotate(auditOf(req));
      return reply.code(201).send({ kid });
    },
  );
  r.get(
    '/v1/keys',
    {
      onRequest: requireAdmin(ctx),
      schema: { summary: 'Signing key states (no private parts)', tags: ['keys'], security: [{ bearer: [] }] },
    },
    async () => ({
      items: ctx.keys.records().map((k) => ({
        kid: k.kid,
        state: k.state,
        createdAt: k.createdAt,
        activatedAt: k.activatedAt,
        retiredAt: k.retiredAt,
        lastGrantExp: k.lastGrantExp,
      })),
    }),
  );
}
