/**
 * The fastify application: zod at the edge, OpenAPI at /docs, per-principal rate limits, request ids in the
 * logs, errors as `{ error: { code, message, detail? } }` with the catalogue's status.
 */
import { randomUUID } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { ServerError, type ServerErrorCode, serverErrors } from '../errors.ts';
import type { AppContext } from './context.ts';
import { grantRoutes } from './routes/grants.ts';
import { healthRoutes } from './routes/health.ts';
import { keyRoutes } from './routes/keys.ts';
import { policyRoutes } from './routes/policy.ts';
import { revocationRoutes } from './routes/revocations.ts';

export interface AppOptions {
  /** pino logger options, or false for none. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Requests per principal (or per address before authentication) per window. */
  readonly rateLimit?: { readonly max: number; readonly timeWindowMs: number };
}

function errorBody(code: ServerErrorCode | string, message: string, detail?: Readonly<Record<string, unknown>>) {
  return { error: detail ? { code, message, detail } : { code, message } };
}

/** Builds (does not listen) the application. */
export async function buildApp(ctx: AppContext, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    bodyLimit: 256 * 1024,
    // Slow or stuck clients must not hold sockets forever (SSE routes hijack and manage their own).
    requestTimeout: 30_000,
    return503OnClosing: true,
    // The router's own refusals (a URL that does not decode, a path segment over 100 characters) get the
    // API's error body too, instead of fastify's.
    frameworkErrors: (err, _req, reply) => {
      const e = err as { statusCode?: number; message?: string };
      (reply as FastifyReply)
        .code(e.statusCode ?? 400)
        .send(errorBody('EXO_ERR_HTTP_VALIDATION', e.message ?? 'bad request'));
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Callback-style hooks: no promise per request on the hot path.
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', String(req.id));
    done(null, payload);
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ServerError) {
      if (err.status >= 500) req.log.error({ err }, err.message);
      return reply.code(err.status).send(errorBody(err.code, err.message, err.detail));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issues = err.validation.map((v) => `${v.instancePath || '/'} ${v.message ?? ''}`.trim());
      return reply
        .code(400)
        .send(errorBody('EXO_ERR_HTTP_VALIDATION', `invalid request: ${issues.join('; ')}`.slice(0, 1000)));
    }
    const e = err as { statusCode?: number; code?: string; message?: string; name?: string };
    if (
      e.name === 'StoreUnavailableError' ||
      e.name === 'StoreContentionError' ||
      e.message?.startsWith('EXO_ERR_STORE_CLOSED')
    ) {
      req.log.warn({ err }, 'store unavailable');
      return reply
        .code(503)
        .send(errorBody('EXO_ERR_STORE_UNAVAILABLE', serverErrors.EXO_ERR_STORE_UNAVAILABLE.message));
    }
    if (e.statusCode === 429)
      return reply
        .code(429)
        .send(errorBody('EXO_ERR_HTTP_RATE_LIMITED', serverErrors.EXO_ERR_HTTP_RATE_LIMITED.message));
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // fastify's own client errors (bad JSON, wrong content type, body too large).
      return reply.code(e.statusCode).send(errorBody('EXO_ERR_HTTP_VALIDATION', e.message ?? 'bad request'));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(errorBody('EXO_ERR_HTTP_INTERNAL', serverErrors.EXO_ERR_HTTP_INTERNAL.message));
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(errorBody('EXO_ERR_HTTP_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'exonet permission server',
        version: '1.0.0',
        description: 'Capability policy and Ed25519-signed BPF grants (API v1).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const limit = options.rateLimit ?? { max: 600, timeWindowMs: 60_000 };
  await app.register(rateLimit, {
    global: true,
    // After authentication (route onRequest hooks), so the key is the principal, not the address.
    hook: 'preHandler',
    max: limit.max,
    timeWindow: limit.timeWindowMs,
    keyGenerator: (req) => (req.principal ? `p:${req.principal.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, context) => {
      const err = new Error(serverErrors.EXO_ERR_HTTP_RATE_LIMITED.message) as Error & { statusCode: number };
      err.statusCode = context.statusCode;
      return err;
    },
  });

  await app.register(async (scope) => {
    await healthRoutes(scope, ctx);
    await keyRoutes(scope, ctx);
    await grantRoutes(scope, ctx);
    await revocationRoutes(scope, ctx);
    await policyRoutes(scope, ctx);
  });
  return app;
}
