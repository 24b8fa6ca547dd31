/** What the routes share: the services, and helpers to require a principal or an admin. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter, Gauge, Registry } from 'prom-client';
import { authenticate } from '../auth.ts';
import { ServerError } from '../errors.ts';
import type { GrantService } from '../grants.ts';
import type { KeyManager } from '../keys.ts';
import type { PolicyCache } from '../policy/cache.ts';
import type { RevocationService } from '../revocations.ts';
import type { AuditContext, Principal, Store } from '../store/store.ts';

export interface Metrics {
  readonly registry: Registry;
  readonly grants: Counter<'result'>;
  readonly revocations: Counter<'kind'>;
  readonly sseClients: Gauge;
}

export interface AppContext {
  readonly store: Store;
  readonly keys: KeyManager;
  readonly policy: PolicyCache;
  readonly grants: GrantService;
  readonly revocations: RevocationService;
  readonly metrics: Metrics;
  /** Seconds between SSE heartbeats. */
  readonly heartbeatSec: number;
  /** Limits of the revocation event streams (defaults in http/sse.ts). */
  readonly sse?: { readonly maxStreams?: number; readonly maxQueuedBytes?: number };
  /** Closed when the server shuts down (SSE streams end). */
  readonly shutdown: AbortSignal;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** onRequest hook: any authenticated principal. */
export function requirePrincipal(ctx: AppContext) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    req.principal = await authenticate(req.headers.authorization, ctx.policy);
  };
}

/** onRequest hook: an authenticated admin. */
export function requireAdmin(ctx: AppContext) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const principal = await authenticate(req.headers.authorization, ctx.policy);
    if (!principal.admin) throw new ServerError('EXO_ERR_AUTH_FORBIDDEN', 'admin role required');
    req.principal = principal;
  };
}

/** Audit context of a request. */
export function auditOf(req: FastifyRequest): AuditContext {
  return { actor: req.principal?.id ?? 'anonymous', requestId: String(req.id) };
}
