/** POST /v1/grants, POST /v1/grants/{id}/renew, GET /v1/grants/{id}. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ServerError } from '../../errors.ts';
import { type AppContext, auditOf, requirePrincipal } from '../context.ts';
import { ErrorBody, GrantListQuery, GrantRequestBody, IdParams, IssuedGrantBody, RenewBody } from '../schemas.ts';
import { fastSerializerCompiler } from '../serializers.ts';

export async function grantRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody };

  r.post(
    '/v1/grants',
    {
      onRequest: requirePrincipal(ctx),
      serializerCompiler: fastSerializerCompiler,
      schema: {
        summary: 'Request a grant for a filter on a driver',
        tags: ['grants'],
        security: [{ bearer: [] }],
        body: GrantRequestBody,
        response: { 201: IssuedGrantBody, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const issued = await ctx.grants.issue(
        req.principal!,
        {
          driver: b.driver,
          dir: b.dir,
          layer: b.layer,
          filter: b.filter !== undefined ? { expression: b.filter } : { program: Buffer.from(b.program!, 'base64url') },
          holder: b.holder,
          port: b.port,
          ttl: b.ttl,
          exclusive: b.exclusive,
          rule: b.rule,
        },
        auditOf(req),
      );
      return reply.code(201).send(issued);
    },
  );

  r.post(
    '/v1/grants/:id/renew',
    {
      onRequest: requirePrincipal(ctx),
      serializerCompiler: fastSerializerCompiler,
      schema: {
        summary: 'Renew a grant: same filter and holder, new expiry, while the policy still allows it',
        tags: ['grants'],
        security: [{ bearer: [] }],
        params: IdParams,
        body: RenewBody.optional(),
        response: { 201: IssuedGrantBody, ...errors, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const issued = await ctx.grants.renew(req.principal!, req.params.id, req.body?.ttl, auditOf(req));
      return reply.code(201).send(issued);
    },
  );

  r.get(
    '/v1/grants',
    {
      onRequest: requirePrincipal(ctx),
      schema: {
        summary: "Grant records, newest first: a principal's own; an admin may name any principal (sub)",
        tags: ['grants'],
        security: [{ bearer: [] }],
        querystring: GrantListQuery,
      },
    },
    async (req) => {
      const p = req.principal!;
      const sub = p.admin ? req.query.sub : p.id;
      if (!p.admin && req.query.sub !== undefined && req.query.sub !== p.id)
        throw new ServerError('EXO_ERR_AUTH_FORBIDDEN', 'only admins list grants of other principals');
      const items = await ctx.store.listGrants({
        sub,
        liveAt: req.query.live ? Math.floor(Date.now() / 1000) : undefined,
        limit: req.query.limit,
      });
      return { items };
    },
  );

  r.get(
    '/v1/grants/:id',
    {
      onRequest: requirePrincipal(ctx),
      schema: {
        summary: 'A grant record (its holder or an admin)',
        tags: ['grants'],
        security: [{ bearer: [] }],
        params: IdParams,
      },
    },
    async (req) => {
      const g = await ctx.store.getGrant(req.params.id);
      if (!g || (g.sub !== req.principal!.id && !req.principal!.admin))
        throw new ServerError('EXO_ERR_GRANT_NOT_FOUND');
      return g;
    },
  );
}
