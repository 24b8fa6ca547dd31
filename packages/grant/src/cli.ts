/**
 * `exonet grant verify`: verifies a grant offline exactly as a driver does (signature, header, claims, time,
 * revocation, the program through the BPF verifier). Exit 0 and the decoded claims if it holds; exit 1 and
 * the reason if not. Also `exonet grant keygen` for holder keys.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { generateKeyPair, privateJwk } from './ed25519.ts';
import { type Failure, fail } from './errors.ts';
import { verifyGrant } from './grant.ts';
import { bpfProgramVerifier } from './program.ts';
import { RevocationSet, verifyRevocationList } from './revocation.ts';

/** Finds or creates the `grant` command (the permission server adds `grant request` to the same one). */
export function grantCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'grant') ?? program.command('grant').description('signed BPF grants')
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a file, `-` (stdin) or an http(s) URL. */
async function readSource(source: string): Promise<string> {
  if (source === '-') return readStdin();
  if (/^https?:\/\//i.test(source)) {
    const res = await fetch(source, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`${source}: HTTP ${res.status}`);
    return res.text();
  }
  return readFileSync(source, 'utf8');
}

/** Everything `grant verify` checks, as a function (the tests call it directly too). */
export async function verifyGrantCommand(options: {
  grant: string;
  jwks: string;
  aud: string;
  revocations?: string;
  now?: number;
  clockToleranceSec?: number;
}): Promise<{ ok: true; claims: unknown } | Failure> {
  let jwks: unknown;
  try {
    jwks = JSON.parse(await readSource(options.jwks));
  } catch (err) {
    return fail('EXO_ERR_JWKS_INVALID', `cannot read the JWKS: ${err instanceof Error ? err.message : String(err)}`);
  }
  const now = options.now ?? Math.floor(Date.now() / 1000);
  let isRevoked: RevocationSet['isRevoked'] | undefined;
  if (options.revocations !== undefined) {
    let text: string;
    try {
      text = (await readSource(options.revocations)).trim();
    } catch (err) {
      return fail(
        'EXO_ERR_REVOCATION_MALFORMED',
        `cannot read the revocation list: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    // A JSON wrapper { "jws": "..." } is accepted as well as the bare compact JWS.
    if (text.startsWith('{')) {
      try {
        text = String((JSON.parse(text) as { jws?: unknown }).jws ?? '');
      } catch {
        return fail('EXO_ERR_REVOCATION_MALFORMED', 'revocation list is neither a JWS nor JSON with a jws member');
      }
    }
    // Fail closed: a list that does not verify, or has expired, refuses the grant.
    const list = verifyRevocationList(text, { jwks, now, clockToleranceSec: options.clockToleranceSec });
    if (!list.ok) return list;
    const set = new RevocationSet();
    set.apply(list.list);
    isRevoked = set.isRevoked;
  }
  let grant = (await readSource(options.grant)).trim();
  // The permission server's JSON answer ({ "grant": "...", ... }) is accepted as well as the bare JWS.
  if (grant.startsWith('{')) {
    try {
      grant = String((JSON.parse(grant) as { grant?: unknown }).grant ?? '');
    } catch {
      return fail('EXO_ERR_GRANT_MALFORMED', 'the grant file is neither a JWS nor JSON with a grant member');
    }
  }
  const result = verifyGrant(grant, {
    jwks,
    audience: options.aud,
    now,
    clockToleranceSec: options.clockToleranceSec,
    isRevoked,
    verifyProgram: bpfProgramVerifier,
  });
  return result.ok ? { ok: true, claims: result.claims } : result;
}

/** Adds this package's subcommands to the `exonet` command line. */
export function registerCommands(program: Command): void {
  const grant = grantCommand(program);
  grant
    .command('verify')
    .description('verify a grant offline exactly as a driver does; exit 0 and the claims, or 1 and the reason')
    .requiredOption('--jwks <file-or-url>', 'the JWKS of the issuer (file or http(s) URL)')
    .requiredOption('--aud <driver-id>', 'this driver id (the grant must name it)')
    .option('--revocations <file-or-url>', 'a signed revocation list (file or URL, e.g. SERVER/v1/revocations)')
    .option('--now <unix-seconds>', 'verify as of this time (default: now)')
    .option('--clock-tolerance <seconds>', 'tolerance for nbf/iat/exp (default 5)')
    .argument('<grant-file>', 'file with the compact JWS, or - for standard input')
    .action(
      async (
        file: string,
        opts: { jwks: string; aud: string; revocations?: string; now?: string; clockTolerance?: string },
      ) => {
        const result = await verifyGrantCommand({
          grant: file,
          jwks: opts.jwks,
          aud: opts.aud,
          revocations: opts.revocations,
          now: opts.now === undefined ? undefined : Number(opts.now),
          clockToleranceSec: opts.clockTolerance === undefined ? undefined : Number(opts.clockTolerance),
        });
        if (result.ok) {
          process.stdout.write(`${JSON.stringify(result.claims, null, 2)}\n`);
          process.exitCode = 0;
        } else {
          const line = `grant refused: ${result.code}: ${result.reason}\n`;
          process.stdout.write(line);
          process.stderr.write(line);
          process.exitCode = 1;
        }
      },
    );

  grant
    .command('keygen')
    .description('create an Ed25519 holder key (private JWK, file mode 0600); prints the public JWK')
    .argument('<file>', 'where to write the private JWK')
    .action((file: string) => {
      const pair = generateKeyPair();
      const jwk = privateJwk(pair);
      writeFileSync(file, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: 'wx' });
      const { d: _secret, ...pub } = jwk;
      process.stdout.write(`${JSON.stringify(pub)}\n`);
    });
}
