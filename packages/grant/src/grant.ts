/** Grants: one signed JWS per filter (ARCHITECTURE.md "Grant"), signing and strict verification. */
import type { SigningKey } from './ed25519.ts';
import { b64urlDecode } from './encoding.ts';
import { type Failure, fail } from './errors.ts';
import type { KeySet } from './jwks.ts';
import { signCompact, verifyCompact } from './jws.ts';

/** The JWS `typ` of a grant. */
export const GRANT_TYP = 'exonet-grant+jwt';

/** Clock tolerance applied to nbf, iat and exp when the caller states none, in seconds. */
export const DEFAULT_CLOCK_TOLERANCE_SEC = 5;

/** Largest program a grant may carry (BPF_MAXINSNS). */
export const MAX_PROGRAM_INSNS = 4096;

/** The claims of a grant, in the order they are serialised. */
export interface GrantClaims {
  /** Issuing cluster. */
  readonly iss: string;
  /** The principal (user) the grant was issued to. */
  readonly sub: string;
  /** The one driver id that may install it. */
  readonly aud: string;
  /** Issued at, unix seconds. */
  readonly iat: number;
  /** Not before, unix seconds. */
  readonly nbf: number;
  /** Expiry, unix seconds. */
  readonly exp: number;
  /** Grant id. */
  readonly jti: string;
  /** RFC 7800 confirmation: RFC 7638 thumbprint of the task's Ed25519 key. */
  readonly cnf: { readonly jkt: string };
  readonly dir: 'rx' | 'tx';
  readonly layer: 'task' | 'user' | 'system';
  /** base64url of the program: 8 bytes an instruction (code u16 LE, jt u8, jf u8, k u32 LE). */
  readonly bpf: string;
  /** True when the grant claims exclusive ownership of what its filter matches. */
  readonly excl: boolean;
  /** The policy rule that allowed it. */
  readonly rule: string;
}

const ID = /^[A-Za-z0-9._:@~-]{1,128}$/;
const JKT = /^[A-Za-z0-9_-]{43}$/;

/** Why the claims are not well-formed grant claims, or undefined. */
export function grantClaimsProblem(c: Record<string, unknown>): string | undefined {
  for (const name of ['iss', 'sub', 'aud', 'jti', 'rule'] as const) {
    if (typeof c[name] !== 'string' || !ID.test(c[name] as string)) return `${name} is not an identifier`;
  }
  for (const name of ['iat', 'nbf', 'exp'] as const) {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return `${name} is not a non-negative integer`;
  }
  const cnf = c.cnf as Record<string, unknown> | null;
  if (
    cnf === null ||
    typeof cnf !== 'object' ||
    Array.isArray(cnf) ||
    typeof cnf.jkt !== 'string' ||
    !JKT.test(cnf.jkt)
  ) {
    return 'cnf.jkt is not an RFC 7638 SHA-256 thumbprint';
  }
  if (c.dir !== 'rx' && c.dir !== 'tx') return 'dir is not "rx" or "tx"';
  if (c.layer !== 'task' && c.layer !== 'user' && c.layer !== 'system') return 'layer is not task, user or system';
  if (typeof c.excl !== 'boolean') return 'excl is not a boolean';
  if (typeof c.bpf !== 'string') return 'bpf is not a string';
  if ((c.exp as number) <= (c.nbf as number)) return 'exp is not after nbf';
  if ((c.nbf as number) < (c.iat as number)) return 'nbf is before iat';
  return undefined;
}

/** Decodes the `bpf` claim: strict base64url, a whole number of 8-byte instructions, 1 to 4096 of them. */
export function decodeProgramClaim(bpf: string): Uint8Array | undefined {
  const bytes = b64urlDecode(bpf);
  if (!bytes || bytes.length === 0 || bytes.length % 8 !== 0 || bytes.length / 8 > MAX_PROGRAM_INSNS) return undefined;
  return bytes;
}

/**
 * Signs a grant: the JWS with header {alg "Ed25519", kid, typ "exonet-grant+jwt"} and the claims serialised in
 * the order of {@link GrantClaims}. The result is deterministic (Ed25519 is), so test vectors pin bytes.
 * @throws GrantInputError-like TypeError when the claims are not well-formed (the server never signs junk)
 */
export function signGrant(claims: GrantClaims, signingKey: SigningKey): string {
  const ordered = {
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    iat: claims.iat,
    nbf: claims.nbf,
    exp: claims.exp,
    jti: claims.jti,
    cnf: { jkt: claims.cnf.jkt },
    dir: claims.dir,
    layer: claims.layer,
    bpf: claims.bpf,
    excl: claims.excl,
    rule: claims.rule,
  };
  const problem = grantClaimsProblem(ordered);
  if (problem) throw new TypeError(`cannot sign grant: ${problem}`);
  if (!decodeProgramClaim(ordered.bpf)) throw new TypeError('cannot sign grant: bpf is not a program');
  return signCompact(GRANT_TYP, ordered, signingKey);
}

/** The program verdict a driver's own BPF verifier returns. */
export type ProgramVerdict = { readonly ok: true } | { readonly ok: false; readonly message?: string };

/** Options of {@link verifyGrant}. */
export interface VerifyGrantOptions {
  /** The issuer's JWKS document (as fetched) or a key set from createKeySet. */
  readonly jwks: KeySet | unknown;
  /** This driver's id: `aud` must equal it. */
  readonly audience: string;
  /** The current time, unix seconds (default: the system clock). */
  readonly now?: number;
  /** Tolerance for nbf, iat and exp, seconds (default {@link DEFAULT_CLOCK_TOLERANCE_SEC}, at most 300). */
  readonly clockToleranceSec?: number;
  /** When given, `iss` must equal it. */
  readonly issuer?: string;
  /** When given, `exp - nbf` must not exceed it (the staleness bound). */
  readonly maxLifetimeSec?: number;
  /** Revocation check (e.g. RevocationSet.isRevoked); a throw counts as revoked (fail closed). */
  readonly isRevoked?: (claims: GrantClaims, kid: string) => boolean;
  /** The driver's own BPF verifier over the program bytes; a throw counts as rejection. */
  readonly verifyProgram: (program: Uint8Array) => ProgramVerdict;
}

/** A grant that holds. */
export interface VerifiedGrant {
  readonly ok: true;
  readonly kid: string;
  readonly claims: GrantClaims;
  /** The decoded program, byte for byte what the driver installs. */
  readonly program: Uint8Array;
}

/**
 * Verifies a grant exactly as a driver does, in this order: shape, header (exactly alg/kid/typ), alg pinned
 * to Ed25519, typ, key (kid known, prime-order key), strict Ed25519 signature, claims (members and types),
 * iss, aud, time (nbf and iat not in the future, exp not passed, each within the clock tolerance), lifetime,
 * revocation, program (decoded, then the caller's BPF verifier). Never throws on hostile input: a failure
 * carries a stable code and a reason. The holder proof is separate ({@link verifyHolderProof}).
 */
export function verifyGrant(jws: unknown, options: VerifyGrantOptions): VerifiedGrant | Failure {
  const verified = verifyCompact(jws, GRANT_TYP, options.jwks, 'GRANT');
  if (!verified.ok) return verified;
  const c = verified.payload;
  const problem = grantClaimsProblem(c);
  if (problem) return fail('EXO_ERR_GRANT_CLAIMS', problem);
  const claims = c as unknown as GrantClaims;
  if (options.issuer !== undefined && claims.iss !== options.issuer) return fail('EXO_ERR_GRANT_ISSUER');
  if (typeof options.audience !== 'string' || claims.aud !== options.audience) return fail('EXO_ERR_GRANT_AUDIENCE');
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = Math.min(Math.max(options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC, 0), 300);
  if (!Number.isFinite(now)) return fail('EXO_ERR_GRANT_EXPIRED', 'no valid current time');
  if (claims.nbf > now + tolerance) return fail('EXO_ERR_GRANT_NOT_YET_VALID', 'nbf is in the future');
  if (claims.iat > now + tolerance) return fail('EXO_ERR_GRANT_NOT_YET_VALID', 'iat is in the future');
  if (claims.exp <= now - tolerance) return fail('EXO_ERR_GRANT_EXPIRED');
  if (options.maxLifetimeSec !== undefined && claims.exp - claims.nbf > options.maxLifetimeSec) {
    return fail('EXO_ERR_GRANT_LIFETIME');
  }
  if (options.isRevoked) {
    let revoked = true;
    try {
      revoked = options.isRevoked(claims, verified.header.kid) !== false;
    } catch {
      revoked = true;
    }
    if (revoked) return fail('EXO_ERR_GRANT_REVOKED');
  }
  const program = decodeProgramClaim(claims.bpf);
  if (!program) return fail('EXO_ERR_GRANT_PROGRAM', 'bpf is not base64url of 1 to 4096 8-byte instructions');
  let verdict: ProgramVerdict;
  try {
    verdict = options.verifyProgram(program);
  } catch (err) {
    verdict = { ok: false, message: err instanceof Error ? err.message : 'verifier failed' };
  }
  if (verdict?.ok !== true) {
    const message = verdict && verdict.ok === false ? verdict.message : undefined;
    return fail('EXO_ERR_GRANT_PROGRAM', `the BPF verifier rejects the program${message ? `: ${message}` : ''}`);
  }
  return { ok: true, kid: verified.header.kid, claims, program };
}

/** Decodes a grant's header and claims WITHOUT verifying anything (for display and logs only). */
export function decodeGrantUnverified(jws: string): { header: unknown; claims: unknown } | undefined {
  try {
    const [h, p] = jws.split('.');
    return {
      header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')),
    };
  } catch {
    return undefined;
  }
}
