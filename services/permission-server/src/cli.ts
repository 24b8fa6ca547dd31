/**
 * Command line: `exonet permission-server` (the server), and admin commands over the HTTP API:
 * `exonet policy ...`, `exonet grant request|renew ...`, `exonet revoke ...`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { b64urlEncode, generateKeyPair, importPrivateJwk, privateJwk, publicJwk } from '@exonet/grant';
import type { Command } from 'commander';
import { z } from 'zod';
import { PermissionClient } from './client.ts';
import type { PermissionServerOptions } from './server.ts';

/** Benchmarks of this package (`exonet bench grants`, `exonet bench revocation`). */
export const benchmarks = {
  grants: () => import('./bench/grants.ts'),
  revocation: () => import('./bench/revocation.ts'),
};

interface ServerFlags {
  store?: string;
  listen?: string;
  config?: string;
  issuer?: string;
  staleness?: string;
  kekFile?: string;
  adminTokenFile?: string;
  logLevel?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const positiveInt = z.number().int().positive();

/** The config file (JSON): the same names as the flags, camelCase; every setting optional. */
const ConfigFile = z
  .strictObject({
    store: z.string().min(1),
    listen: z.string().min(1),
    issuer: z.string().min(1).max(256),
    stalenessSec: positiveInt,
    listValiditySec: positiveInt,
    heartbeatSec: z.number().positive().max(86_400),
    kekFile: z.string().min(1),
    adminTokenFile: z.string().min(1),
    publishDelaySec: z.number().int().nonnegative(),
    rateLimit: z.strictObject({ max: positiveInt, timeWindowMs: positiveInt }),
    logLevel: z.enum(LOG_LEVELS),
    sse: z.strictObject({ maxStreams: positiveInt, maxQueuedBytes: positiveInt }).partial(),
  })
  .partial();

/** Keys of the config file. */
const CONFIG_KEYS = Object.keys(ConfigFile.shape);

/** Reads and checks a config file: every problem is reported with the file and the setting's name. */
function readConfig(file: string): z.infer<typeof ConfigFile> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a readable JSON file (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${file}: expected a JSON object of settings (${CONFIG_KEYS.join(', ')})`);
  }
  const unknown = Object.keys(value).filter((k) => !CONFIG_KEYS.includes(k));
  if (unknown.length > 0)
    throw new Error(`${file}: unknown setting(s) ${unknown.join(', ')}; known: ${CONFIG_KEYS.join(', ')}`);
  const parsed = ConfigFile.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new Error(`${file}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Merges the config file (if any) and the flags (flags win) into server options. */
export function serverOptions(flags: ServerFlags): PermissionServerOptions & { logLevel?: string } {
  const config = flags.config ? readConfig(flags.config) : {};
  const merged = { ...config } as PermissionServerOptions & { logLevel?: string };
  const set = <K extends keyof typeof merged>(k: K, v: (typeof merged)[K] | undefined) => {
    if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  };
  if (flags.staleness !== undefined && !/^\d+$/.test(flags.staleness)) {
    throw new Error(`--staleness: expected a whole number of seconds, got "${flags.staleness}"`);
  }
  if (flags.logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(flags.logLevel)) {
    throw new Error(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${flags.logLevel}"`);
  }
  set('store', flags.store);
  set('listen', flags.listen);
  set('issuer', flags.issuer);
  set('stalenessSec', flags.staleness === undefined ? undefined : Number(flags.staleness));
  set('kekFile', flags.kekFile);
  set('adminTokenFile', flags.adminTokenFile);
  set('logLevel', flags.logLevel);
  return merged;
}

function client(cmd: Command): PermissionClient {
  const o = cmd.optsWithGlobals() as { server?: string; token?: string; tokenFile?: string };
  const token = o.token ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
  return new PermissionClient({ server: o.server, token });
}

function print(value: unknown): void {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
}

function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'permission server URL (default: $EXONET_SERVER or http://127.0.0.1:7480)')
    .option('--token <token>', 'bearer token (default: $EXONET_TOKEN)')
    .option('--token-file <file>', 'read the bearer token from a file');
}

/** Reads a JSON document from a file or standard input (`-`); errors name the source. */
export async function readJson(source: string): Promise<unknown> {
  const name = source === '-' ? 'standard input' : source;
  let text: string;
  try {
    if (source === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} is not JSON: ${(err as Error).message}`);
  }
}

const KINDS = ['principals', 'groups', 'rules', 'drivers'];
function kindOf(kind: string): string {
  const k = kind.endsWith('s') ? kind : `${kind}s`;
  if (!KINDS.includes(k)) throw new Error(`unknown policy kind "${kind}"; known: ${KINDS.join(', ')}`);
  return k;
}

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(program: Command): void {
  program
    .command('permission-server')
    .description('run the permission server (grants, revocation feed, policy API)')
    .option('--store <spec>', 'sqlite:PATH or etcd:URL,URL (default sqlite:.exonet/permission-server.db)')
    .option('--listen <addr>', 'HOST:PORT to listen on (default 127.0.0.1:7480)')
    .option('--config <file>', `JSON config file (${CONFIG_KEYS.join(', ')}); flags override it`)
    .option('--issuer <name>', 'iss of grants and revocation lists (default exonet)')
    .option('--staleness <seconds>', 'upper bound of grant lifetimes and revocation staleness (default 300)')
    .option('--kek-file <file>', 'key-encryption key file (default: kek beside the SQLite file; or $EXONET_KEK)')
    .option('--admin-token-file <file>', 'where a generated bootstrap admin token is written')
    .option('--log-level <level>', 'pino log level (default info)')
    .action(async (flags: ServerFlags) => {
      const { startPermissionServer } = await import('./server.ts');
      const { logLevel, ...options } = serverOptions(flags);
      const server = await startPermissionServer({
        ...options,
        adminToken: process.env.EXONET_ADMIN_TOKEN || undefined,
        logger: { level: logLevel ?? 'info' },
      });
      process.stderr.write(`permission server listening on ${server.url} (store ${server.store.kind})\n`);
      if (server.adminToken) process.stderr.write('bootstrap admin token written to the admin token file\n');
      // Machine-readable line for supervisors and tests.
      process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          server.app.log.info({ signal }, 'shutting down');
          server.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });

  const policy = withClientOptions(
    program.command('policy').description('policy management over the HTTP API (admin)'),
  );
  policy
    .command('list')
    .argument('<kind>', 'principals, groups, rules or drivers')
    .action(async (kind: string, _o, cmd: Command) => print(await client(cmd).request('GET', `/v1/${kindOf(kind)}`)));
  policy
    .command('get')
    .argument('<kind>')
    .argument('<id>')
    .action(async (kind: string, id: string, _o, cmd: Command) =>
      print(await client(cmd).request('GET', `/v1/${kindOf(kind)}/${encodeURIComponent(id)}`)),
    );
  policy
    .command('put')
    .description('create or replace an object from a JSON file (- for stdin)')
    .argument('<kind>')
    .argument('<file>')
    .option('--if-version <n>', 'only if the current version is n (0: only if new)')
    .action(async (kind: string, file: string, o: { ifVersion?: string }, cmd: Command) => {
      const body = (await readJson(file)) as { id?: string };
      const headers: Record<string, string> = o.ifVersion === undefined ? {} : { 'if-match': `"${o.ifVersion}"` };
      print(
        await client(cmd).request('PUT', `/v1/${kindOf(kind)}/${encodeURIComponent(String(body.id))}`, body, headers),
      );
    });
  policy
    .command('delete')
    .argument('<kind>')
    .argument('<id>')
    .action(async (kind: string, id: string, _o, cmd: Command) => {
      await client(cmd).request('DELETE', `/v1/${kindOf(kind)}/${encodeURIComponent(id)}`);
      print({ deleted: id });
    });
  policy
    .command('token')
    .description('issue a bearer token for a principal (printed once)')
    .argument('<principal>')
    .action(async (id: string, _o, cmd: Command) =>
      print(await client(cmd).request('POST', `/v1/principals/${encodeURIComponent(id)}/tokens`)),
    );

  const grant =
    program.commands.find((c) => c.name() === 'grant') ?? program.command('grant').description('signed BPF grants');
  withClientOptions(
    grant
      .command('request')
      .description('request a grant (prints the server response; --out writes the grant JWS to a file)')
      .requiredOption('--driver <id>', 'driver id')
      .option('--dir <dir>', 'rx or tx', 'rx')
      .option('--filter <expr>', 'pcap-filter expression')
      .option('--program <file>', 'binary BPF program file (instead of --filter)')
      .option('--port <n>', 'port for rules with {port}')
      .option('--ttl <seconds>', 'requested lifetime')
      .option('--exclusive', 'claim exclusively')
      .option('--shared', 'claim shared')
      .option('--rule <id>', 'ask for one rule')
      .requiredOption('--holder-key <file>', 'private JWK of the holder key (created, mode 0600, if missing)')
      .option('--out <file>', 'write the grant JWS here'),
  ).action(async (o: Record<string, string | boolean | undefined>, cmd: Command) => {
    const keyFile = String(o.holderKey);
    if (!existsSync(keyFile))
      writeFileSync(keyFile, `${JSON.stringify(privateJwk(generateKeyPair()))}\n`, { mode: 0o600, flag: 'wx' });
    let pair: ReturnType<typeof importPrivateJwk>;
    try {
      pair = importPrivateJwk(await readJson(keyFile));
    } catch (err) {
      throw new Error(`--holder-key: ${(err as Error).message}`);
    }
    const body: Record<string, unknown> = {
      driver: o.driver,
      dir: o.dir,
      holder: publicJwk(pair.publicKey),
      ...(o.filter !== undefined ? { filter: o.filter } : {}),
      ...(o.program !== undefined ? { program: b64urlEncode(readFileSync(String(o.program))) } : {}),
      ...(o.port !== undefined ? { port: Number(o.port) } : {}),
      ...(o.ttl !== undefined ? { ttl: Number(o.ttl) } : {}),
      ...(o.exclusive ? { exclusive: true } : o.shared ? { exclusive: false } : {}),
      ...(o.rule !== undefined ? { rule: o.rule } : {}),
    };
    const issued = await client(cmd).request<{ grant: string }>('POST', '/v1/grants', body);
    if (o.out) writeFileSync(String(o.out), `${issued.grant}\n`);
    print(issued);
  });
  withClientOptions(
    grant
      .command('renew')
      .description('renew a grant by id')
      .argument('<id>')
      .option('--ttl <seconds>')
      .option('--out <file>', 'write the new grant JWS here'),
  ).action(async (id: string, o: { ttl?: string; out?: string }, cmd: Command) => {
    const issued = await client(cmd).request<{ grant: string }>(
      'POST',
      `/v1/grants/${encodeURIComponent(id)}/renew`,
      o.ttl ? { ttl: Number(o.ttl) } : {},
    );
    if (o.out) writeFileSync(o.out, `${issued.grant}\n`);
    print(issued);
  });

  withClientOptions(
    program
      .command('revoke')
      .description('revoke by grant id, principal, rule or signing key (admin); prints the sequence number')
      .option('--jti <id>', 'a grant id')
      .option('--sub <principal>', 'every grant of a principal issued until now')
      .option('--rule <id>', 'every grant under a rule issued until now')
      .option('--kid <kid>', 'every grant signed with a key (the key is replaced if active)')
      .option('--reason <text>', 'recorded in the audit log', ''),
  ).action(async (o: { jti?: string; sub?: string; rule?: string; kid?: string; reason: string }, cmd: Command) => {
    const given = (['jti', 'sub', 'rule', 'kid'] as const).filter((k) => o[k] !== undefined);
    if (given.length !== 1) throw new Error('give exactly one of --jti, --sub, --rule, --kid');
    const kind = given[0]!;
    print(await client(cmd).request('POST', '/v1/revocations', { kind, value: o[kind], reason: o.reason }));
  });
}
