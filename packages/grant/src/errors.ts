/**
 * The grant package's error catalogue. Every refusal carries one of these stable codes and a message that
 * names what is wrong without echoing secrets; the codes are part of the contract with drivers (docs/grants.md
 * lists each one, and a test checks that every code is documented).
 */

/** Stable failure codes of grant, holder-proof and revocation-list verification. */
export const grantErrorCodes = {
  EXO_ERR_GRANT_MALFORMED: 'not a compact JWS of three base64url parts within the size limit',
  EXO_ERR_GRANT_HEADER: 'protected header is not a JSON object with exactly alg, kid and typ',
  EXO_ERR_GRANT_ALG: 'alg is not "Ed25519" (the only accepted algorithm)',
  EXO_ERR_GRANT_TYP: 'typ is not the expected token type',
  EXO_ERR_GRANT_KID_UNKNOWN: 'no key with this kid in the JWKS',
  EXO_ERR_GRANT_KEY_INVALID: 'the key is not a valid prime-order Ed25519 public key',
  EXO_ERR_GRANT_SIGNATURE: 'the signature does not verify under strict Ed25519',
  EXO_ERR_GRANT_CLAIMS: 'the claims are not a JSON object of the required members and types',
  EXO_ERR_GRANT_ISSUER: 'iss is not the expected issuer',
  EXO_ERR_GRANT_AUDIENCE: 'aud is not this driver',
  EXO_ERR_GRANT_EXPIRED: 'exp has passed (beyond the clock tolerance)',
  EXO_ERR_GRANT_NOT_YET_VALID: 'nbf or iat lies in the future (beyond the clock tolerance)',
  EXO_ERR_GRANT_LIFETIME: 'exp - nbf exceeds the allowed maximum lifetime',
  EXO_ERR_GRANT_REVOKED: 'the grant, its subject, rule or key has been revoked',
  EXO_ERR_GRANT_PROGRAM: 'the bpf program is malformed or rejected by the BPF verifier',
  EXO_ERR_HOLDER_KEY: 'the holder key is not a valid prime-order Ed25519 public JWK',
  EXO_ERR_HOLDER_MISMATCH: 'the holder key thumbprint differs from cnf.jkt',
  EXO_ERR_HOLDER_PROOF: 'the holder proof is not a valid signature of the challenge',
  EXO_ERR_JWKS_INVALID: 'the JWKS is not a JSON object with a keys array of Ed25519 public JWKs',
  EXO_ERR_REVOCATION_MALFORMED: 'the revocation list is not a well-formed signed list',
  EXO_ERR_REVOCATION_SIGNATURE: 'the revocation list signature does not verify',
  EXO_ERR_REVOCATION_STALE: 'the revocation list is older than the one already held (sequence or after)',
  EXO_ERR_REVOCATION_EXPIRED: 'the revocation list is past its valid_until',
} as const;

/** One of the stable failure codes. */
export type GrantErrorCode = keyof typeof grantErrorCodes;

/** A failed verification: never thrown by the verifiers, returned. */
export interface Failure {
  readonly ok: false;
  readonly code: GrantErrorCode;
  /** Human-readable reason; names the check, never key material. */
  readonly reason: string;
}

/** Builds a failure result. */
export function fail(code: GrantErrorCode, reason?: string): Failure {
  return { ok: false, code, reason: reason ?? grantErrorCodes[code] };
}

/** Thrown only by signing helpers given invalid input by the caller (never by verifiers). */
export class GrantInputError extends Error {
  readonly code = 'EXO_ERR_GRANT_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'GrantInputError';
  }
}
