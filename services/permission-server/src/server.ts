/**
 * Assembling and running a permission server: store, keys, policy, services, HTTP. `startPermissionServer`
 * is what the command line and the tests use; `close()` shuts down gracefully (event streams end, in-flight
 * requests finish, the store flushes and closes).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { generateToken, hashToken } from './auth.ts';
import { ServerError } from './errors.ts';
import { FilterBuilder, type FilterCompiler } from './filters.ts';
import { GrantService } from './grants.ts';
import { buildApp } from './http/app.ts';
import type { AppContext } from './http/context.ts';
import { KeyManager, loadKek } from './keys.ts';
import { createMetrics } from './metrics.ts';
import { PolicyCache } from './policy/cache.ts';
import { RevocationService } from './revocations.ts';
import { storeFromSpec } from './store/from-spec.ts';
import type { Store } from './store/store.ts';

/** Options of a permission server (the command line's flags and config file map onto these). */
export interface PermissionServerOptions {
  /** A store, or a specification: `sqlite:PATH` (default `sqlite:.exonet/permission-server.db`) or `etcd:URL,URL`. */
  readonly store?: Store | string;
  /** `HOST:PORT` (default `127.0.0.1:7480`; port 0 picks a free one). */
  readonly listen?: string;
  /** `iss` of every grant and list (default `exonet`). */
  readonly issuer?: string;
  /** Upper bound of every grant's lifetime and of the revocation staleness, seconds (default 300). */
  readonly stalenessSec?: number;
  /** Validity of a signed revocation list, seconds (default min(60, stalenessSec)). */
  readonly listValiditySec?: number;
  /** Seconds between event-stream heartbeats (default 15). */
  readonly heartbeatSec?: number;
  /** The key-encryption key; else EXONET_KEK; else `kekFile`. */
  readonly kek?: Uint8Array;
  /** KEK file (default `kek` beside the SQLite file; none for other stores: then EXONET_KEK is required). */
  readonly kekFile?: string;
  /** Token of the bootstrap admin principal `admin`, created when no admin exists. */
  readonly adminToken?: string;
  /** Where a generated bootstrap admin token is written (mode 0600; default `admin-token` beside the SQLite file). */
  readonly adminTokenFile?: string;
  /** Seconds a new signing key is published before it signs (default 0: drivers refetch the JWKS on an unknown kid). */
  readonly publishDelaySec?: number;
  readonly rateLimit?: { readonly max: number; readonly timeWindowMs: number };
  readonly logger?: FastifyServerOptions['logger'];
  /** pcap-filter compiler (default: @exonet/bpf's compileExpression). */
  readonly compile?: FilterCompiler;
  /** Clock tolerance, seconds (default 5). */
  readonly toleranceSec?: number;
  /** Limits of GET /v1/revocations/stream: streams at once (1024), bytes queued for a client that does not read (1 MiB). */
  readonly sse?: { readonly maxStreams?: number; readonly maxQueuedBytes?: number };
}

/** A running permission server. */
export interface PermissionServer {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly keys: KeyManager;
  readonly context: AppContext;
  /** Base URL, e.g. `http://127.0.0.1:43121`. */
  readonly url: string;
  /** The bootstrap admin token when this start created it (else undefined). */
  readonly adminToken: string | undefined;
  close(): Promise<void>;
}

/** Parses `HOST:PORT`, `:PORT`, `PORT` or `[V6]:PORT`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65_535) throw new ServerError('EXO_ERR_SERVER_CONFIG', `--listen "${listen}" is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

const DEFAULT_STORE = 'sqlite:.exonet/permission-server.db';

/** Builds and starts a server (listening when `listen` allows). */
export async function startPermissionServer(options: PermissionServerOptions = {}): Promise<PermissionServer> {
  const spec = typeof options.store === 'string' ? options.store : options.store ? undefined : DEFAULT_STORE;
  const store = typeof options.store === 'object' ? options.store : storeFromSpec(spec!);
  const sqliteDir = spec?.startsWith('sqlite:') && spec !== 'sqlite::memory:' ? dirname(spec.slice(7)) : undefined;
  const stalenessSec = options.stalenessSec ?? 300;
  if (!Number.isInteger(stalenessSec) || stalenessSec < 1)
    throw new ServerError('EXO_ERR_SERVER_CONFIG', 'stalenessSec must be a positive integer');
  const issuer = options.issuer ?? 'exonet';
  const tolerance = options.toleranceSec ?? 5;

  await store.open();
  const system = { actor: 'system' };
  try {
    const kek = options.kek ?? loadKek(options.kekFile ?? (sqliteDir ? join(sqliteDir, 'kek') : undefined));
    const keys = new KeyManager(store, kek, { publishDelaySec: options.publishDelaySec, toleranceSec: tolerance });
    await keys.init(system);
    // A shared store (etcd) reports key changes made by any replica: reload at once, so every replica
    // publishes the same JWKS and signs with the one active key (the 10 s tick below is the fallback).
    store.watchKeys?.(() => {
      keys.reload().catch(() => {});
    });
    const adminToken = await bootstrapAdmin(
      store,
      options.adminToken,
      options.adminTokenFile ?? (sqliteDir ? join(sqliteDir, 'admin-token') : undefined),
    );

    const policy = new PolicyCache(store);
    const metrics = createMetrics();
    const shutdown = new AbortController();
    const context: AppContext = {
      store,
      keys,
      policy,
      metrics,
      heartbeatSec: options.heartbeatSec ?? 15,
      sse: options.sse,
      shutdown: shutdown.signal,
      grants: new GrantService({
        store,
        keys,
        policy,
        filters: new FilterBuilder(options.compile),
        issuer,
        stalenessSec,
        onIssued: (result) => metrics.grants.inc({ result }),
      }),
      revocations: new RevocationService({
        store,
        keys,
        issuer,
        stalenessSec,
        listValiditySec: options.listValiditySec,
        toleranceSec: tolerance,
      }),
    };
    const app = await buildApp(context, { logger: options.logger, rateLimit: options.rateLimit });
    // One labelled child per (method, route, status), looked up by a string key: no label object and no label
    // hashing per request. Callback-style hook: no promise per request.
    const durations = new Map<string, { observe(value: number): void }>();
    app.addHook('onResponse', (req, reply, done) => {
      const route = req.routeOptions.url ?? 'unknown';
      const key = `${req.method} ${reply.statusCode} ${route}`;
      let child = durations.get(key);
      if (!child) {
        child = metrics.httpDuration.labels(req.method, route, String(reply.statusCode));
        durations.set(key, child);
      }
      child.observe(reply.elapsedTime / 1000);
      done();
    });
    // Key lifecycle: promote published keys, drop retired ones, pick up rotations by other servers.
    const tick = setInterval(() => {
      keys.tick(system).catch((err) => app.log.warn({ err }, 'key maintenance failed'));
    }, 10_000);
    tick.unref();

    const { host, port } = parseListen(options.listen ?? '127.0.0.1:7480');
    await app.listen({ host, port });
    const address = app.server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
    let closing: Promise<void> | undefined;
    return {
      app,
      store,
      keys,
      context,
      url,
      adminToken,
      close() {
        closing ??= (async () => {
          clearInterval(tick);
          shutdown.abort();
          await app.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/**
 * Ensures an admin exists. With `token`: principal `admin` gets it (if no admin exists yet). Without: a fresh
 * token is written to `file` (mode 0600) and returned, so an operator can read it once.
 */
async function bootstrapAdmin(
  store: Store,
  token: string | undefined,
  file: string | undefined,
): Promise<string | undefined> {
  const principals = await store.list('principals');
  if (principals.some((p) => p.admin && !p.disabled)) {
    if (token) {
      const known = await store.findToken(hashToken(token));
      if (!known)
        await store.addToken(
          {
            hash: hashToken(token),
            principal: principals.find((p) => p.admin)!.id,
            createdAt: Math.floor(Date.now() / 1000),
          },
          { actor: 'system' },
        );
    }
    return undefined;
  }
  if (token !== undefined && !/^exo_[A-Za-z0-9_-]{43}$/.test(token)) {
    throw new ServerError(
      'EXO_ERR_SERVER_CONFIG',
      'the admin token must look like exo_ followed by 43 base64url characters',
    );
  }
  const fresh = token ?? generateToken();
  const ctx = { actor: 'system' };
  await store.put(
    'principals',
    { id: 'admin', uid: 0, groups: [], capabilities: [], admin: true, attributes: {}, disabled: false },
    ctx,
  );
  await store.addToken({ hash: hashToken(fresh), principal: 'admin', createdAt: Math.floor(Date.now() / 1000) }, ctx);
  if (!token && file) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${fresh}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return token ? undefined : fresh;
}

/** Reads a token file written by a server start (for the command line). */
export function readTokenFile(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}
