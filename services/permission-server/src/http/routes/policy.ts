/**
 * Policy management (admin): /v1/principals, /v1/groups, /v1/rules, /v1/drivers, each with list, get,
 * create (POST, 409 if it exists), replace (PUT, optional If-Match: version -> 412 on mismatch) and delete;
 * bearer tokens of principals; the audit log.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { generateToken, hashToken } from '../../auth.ts';
import { ServerError } from '../../errors.ts';
import type { PolicyInput, PolicyKind } from '../../store/store.ts';
import { type AppContext, auditOf, requireAdmin } from '../context.ts';
import { AfterQuery, DriverBody, ErrorBody, GroupBody, IdParams, PrincipalBody, RuleBody } from '../schemas.ts';

const bodies = { principals: PrincipalBody, groups: GroupBody, rules: RuleBody, drivers: DriverBody } as const;

function ifMatch(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = String(Array.isArray(header) ? header[0] : header)
    .replace(/^W\//, '')
    .replace(/"/g, '');
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ServerError('EXO_ERR_HTTP_VALIDATION', 'If-Match must be a version number');
  return n;
}

/**
 * Refuses a change that would take away the requesting administrator's own access: since every admin
 * request comes from an administrator with a working token, at least one always remains.
 */
function notSelf(req: { principal?: { id: string } }, target: string, what: string): void {
  if (req.principal?.id === target) {
    throw new ServerError(
      'EXO_ERR_POLICY_SELF_LOCKOUT',
      `you sign in as ${target}: another administrator must ${what} it, so the server keeps an administrator`,
    );
  }
}

export async function policyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireAdmin(ctx);

  for (const kind of Object.keys(bodies) as PolicyKind[]) {
    const Body = bodies[kind];
    const tags = ['policy'];
    const security = [{ bearer: [] }];
    const put = async (value: PolicyInput<PolicyKind>, req: Parameters<typeof auditOf>[0], version?: number) => {
      const result = await ctx.store.put(kind, value as PolicyInput<typeof kind>, auditOf(req), version);
      ctx.policy.invalidate();
      if (!result.ok) {
        throw version === 0
          ? new ServerError('EXO_ERR_POLICY_EXISTS', `${kind} ${value.id} already exists`)
          : new ServerError('EXO_ERR_POLICY_VERSION');
      }
      return result.value;
    };

    r.get(`/v1/${kind}`, { onRequest: admin, schema: { summary: `List ${kind}`, tags, security } }, async () => ({
      items: await ctx.store.list(kind),
    }));

    r.get(
      `/v1/${kind}/:id`,
      {
        onRequest: admin,
        schema: { summary: `One of ${kind}`, tags, security, params: IdParams },
      },
      async (req, reply) => {
        const value = await ctx.store.get(kind, req.params.id);
        if (!value) throw new ServerError('EXO_ERR_POLICY_NOT_FOUND', `no ${kind} ${req.params.id}`);
        return reply.header('etag', `"${value.version}"`).send(value);
      },
    );

    r.post(
      `/v1/${kind}`,
      { onRequest: admin, schema: { summary: `Create one of ${kind}`, tags, security, body: Body } },
      async (req, reply) => {
        const value = await put(req.body as PolicyInput<PolicyKind>, req, 0);
        return reply.code(201).header('etag', `"${value.version}"`).send(value);
      },
    );

    r.put(
      `/v1/${kind}/:id`,
      {
        onRequest: admin,
        schema: {
          summary: `Create or replace one of ${kind} (If-Match: version)`,
          tags,
          security,
          params: IdParams,
          body: Body,
        },
      },
      async (req, reply) => {
        const body = req.body as PolicyInput<PolicyKind>;
        if (body.id !== req.params.id)
          throw new ServerError('EXO_ERR_POLICY_INVALID', 'the id in the body differs from the path');
        if (kind === 'principals' && (body as { admin?: boolean }).admin !== true)
          notSelf(req, req.params.id, 'demote');
        const value = await put(body, req, ifMatch(req.headers['if-match']));
        return reply.header('etag', `"${value.version}"`).send(value);
      },
    );

    r.delete(
      `/v1/${kind}/:id`,
      {
        onRequest: admin,
        schema: { summary: `Delete one of ${kind}`, tags, security, params: IdParams },
      },
      async (req, reply) => {
        if (kind === 'principals') notSelf(req, req.params.id, 'delete');
        let deleted: boolean;
        try {
          deleted = await ctx.store.delete(kind, req.params.id, auditOf(req));
          if (kind === 'principals' && deleted) await ctx.store.deleteTokens(req.params.id, auditOf(req));
        } finally {
          ctx.policy.invalidate();
        }
        if (!deleted) throw new ServerError('EXO_ERR_POLICY_NOT_FOUND', `no ${kind} ${req.params.id}`);
        return reply.code(204).send();
      },
    );
  }

  r.post(
    '/v1/principals/:id/tokens',
    {
      onRequest: admin,
      schema: {
        summary: 'Issue a bearer token for a principal (shown once)',
        tags: ['policy'],
        security: [{ bearer: [] }],
        params: IdParams,
        response: { 201: z.object({ token: z.string() }), 404: ErrorBody },
      },
    },
    async (req, reply) => {
      if (!(await ctx.store.get('principals', req.params.id)))
        throw new ServerError('EXO_ERR_POLICY_NOT_FOUND', `no principal ${req.params.id}`);
      const token = generateToken();
      await ctx.store.addToken(
        { hash: hashToken(token), principal: req.params.id, createdAt: Math.floor(Date.now() / 1000) },
        auditOf(req),
      );
      ctx.policy.invalidate();
      return reply.code(201).send({ token });
    },
  );

  r.delete(
    '/v1/principals/:id/tokens',
    {
      onRequest: admin,
      schema: {
        summary: "Delete all of a principal's tokens",
        tags: ['policy'],
        security: [{ bearer: [] }],
        params: IdParams,
      },
    },
    async (req) => {
      notSelf(req, req.params.id, 'revoke the tokens of');
      try {
        return { deleted: await ctx.store.deleteTokens(req.params.id, auditOf(req)) };
      } finally {
        // Cached token lookups must not outlive the tokens (also when the store failed: it may have committed).
        ctx.policy.invalidate();
      }
    },
  );

  r.get(
    '/v1/audit',
    {
      onRequest: admin,
      schema: {
        summary: 'Audit log after sequence N',
        tags: ['operations'],
        security: [{ bearer: [] }],
        querystring: AfterQuery,
      },
    },
    async (req) => ({ items: await ctx.store.listAudit(req.query.after, 1000) }),
  );
}
