/** POST /v1/revocations, GET /v1/revocations?after=N, GET /v1/revocations/stream (server-sent events). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type AppContext, auditOf, requireAdmin } from '../context.ts';
import { AfterQuery, ErrorBody, RevocationBody } from '../schemas.ts';
import { boundedEventSender, DEFAULT_SSE_MAX_QUEUED_BYTES, DEFAULT_SSE_MAX_STREAMS } from '../sse.ts';

/** Media type of a signed revocation list (a compact JWS). */
export const REVOCATIONS_MEDIA_TYPE = 'application/jwt';

export async function revocationRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const maxStreams = ctx.sse?.maxStreams ?? DEFAULT_SSE_MAX_STREAMS;
  const maxQueued = ctx.sse?.maxQueuedBytes ?? DEFAULT_SSE_MAX_QUEUED_BYTES;
  let streams = 0;

  r.post(
    '/v1/revocations',
    {
      onRequest: requireAdmin(ctx),
      schema: {
        summary: 'Revoke by grant id (jti), principal (sub), rule or signing key (kid)',
        tags: ['revocations'],
        security: [{ bearer: [] }],
        body: RevocationBody,
        response: {
          201: z.object({ seq: z.number(), kind: z.string(), value: z.string(), at: z.number(), until: z.number() }),
          400: ErrorBody,
          401: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const e = await ctx.revocations.revoke(req.body.kind, req.body.value, req.body.reason, auditOf(req));
      ctx.metrics.revocations.inc({ kind: e.kind });
      return reply.code(201).send({ seq: e.seq, kind: e.kind, value: e.value, at: e.at, until: e.until });
    },
  );

  r.get(
    '/v1/revocations',
    {
      config: { rateLimit: false },
      schema: {
        summary: 'Signed revocation list after sequence N (compact JWS, typ exonet-revocations+jwt)',
        tags: ['revocations'],
        querystring: AfterQuery,
        response: { 200: z.string(), 400: ErrorBody },
      },
    },
    async (req, reply) => {
      const { jws, list } = await ctx.revocations.signedList(req.query.after);
      return reply
        .header('content-type', REVOCATIONS_MEDIA_TYPE)
        .header('x-exonet-seq', String(list.seq))
        .header('cache-control', 'no-store')
        .send(jws);
    },
  );

  r.get(
    '/v1/revocations/stream',
    {
      config: { rateLimit: false },
      schema: {
        summary: 'Server-sent events: one signed list per event (event "revocations", id = sequence number)',
        tags: ['revocations'],
        querystring: AfterQuery,
        response: { 400: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      // The stream is open to anyone (the lists are signed, not secret): the number of streams is what bounds
      // the memory and file descriptors they hold.
      if (streams >= maxStreams) {
        return reply
          .code(503)
          .header('retry-after', '5')
          .send({
            error: { code: 'EXO_ERR_HTTP_BUSY', message: `${streams} revocation streams are open; try again later` },
          });
      }
      const lastEventId = Number(req.headers['last-event-id']);
      const after = Number.isSafeInteger(lastEventId) && lastEventId > req.query.after ? lastEventId : req.query.after;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 1000\n\n`);
      let closed = false;
      const write = boundedEventSender(res, maxQueued, () => {
        req.log.warn({ queued: res.writableLength }, 'revocation stream client does not read; closing its stream');
        // Not end(): its queue would still have to drain first. The client reconnects with Last-Event-ID.
        res.destroy();
      });
      const send = (jws: string, seq: number) => {
        if (!closed) write(`id: ${seq}\nevent: revocations\ndata: ${jws}\n\n`);
      };
      let feed: { stop: () => void; heartbeat: () => void } | undefined;
      let timer: NodeJS.Timeout | undefined;
      const end = () => {
        if (closed) return;
        closed = true;
        streams--;
        feed?.stop();
        if (timer) clearInterval(timer);
        ctx.metrics.sseClients.dec();
        ctx.shutdown.removeEventListener('abort', end);
        res.end();
      };
      streams++;
      ctx.metrics.sseClients.inc();
      req.raw.on('close', end);
      res.on('close', end);
      ctx.shutdown.addEventListener('abort', end);
      try {
        feed = await ctx.revocations.subscribe(after, send, (err) => {
          req.log.warn({ err }, 'revocation feed broken; closing the stream so the client re-lists');
          end();
        });
        if (closed) feed.stop();
        timer = setInterval(() => feed?.heartbeat(), ctx.heartbeatSec * 1000);
        timer.unref();
      } catch (err) {
        req.log.error({ err }, 'revocation stream failed');
        end();
      }
    },
  );
}
