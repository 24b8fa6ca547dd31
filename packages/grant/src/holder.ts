/**
 * Proof of possession of the holder key (RFC 7800 `cnf`, RFC 9449 `jkt`): before installing a grant the driver
 * sends a fresh random challenge; the task signs it with the key whose thumbprint is the grant's `cnf.jkt`.
 * A stolen grant is useless without that private key.
 */
import { randomBytes } from 'node:crypto';
import {
  type Ed25519KeyPair,
  type Ed25519PrivateJwk,
  importPrivateJwk,
  importPublicJwk,
  signBytes,
  verifyStrict,
} from './ed25519.ts';
import { b64urlDecode, b64urlEncode, utf8 } from './encoding.ts';
import { type Failure, fail } from './errors.ts';
import { jwkThumbprint } from './thumbprint.ts';

/**
 * Domain separation: the signed bytes can never be mistaken for a JWS signing input (which has no such prefix
 * and always contains two base64url parts).
 */
const PROOF_PREFIX = 'exonet-holder-proof-v1:';
const CHALLENGE = /^[A-Za-z0-9_-]{22,256}$/;

/** A fresh challenge: 32 random bytes, base64url (43 characters). Use each one once. */
export function createChallenge(): string {
  return b64urlEncode(randomBytes(32));
}

/** The bytes a holder signs for `challenge`. */
export function holderProofInput(challenge: string): Uint8Array {
  return utf8(`${PROOF_PREFIX}${challenge}`);
}

/**
 * The task's answer to a challenge: base64url of the Ed25519 signature of
 * `"exonet-holder-proof-v1:" + challenge` under its holder key.
 * @throws TypeError on a malformed challenge or key
 */
export function signChallenge(challenge: string, holderPrivateKey: Ed25519KeyPair | Ed25519PrivateJwk): string {
  if (typeof challenge !== 'string' || !CHALLENGE.test(challenge)) throw new TypeError('malformed challenge');
  const pair = 'seed' in holderPrivateKey ? holderPrivateKey : importPrivateJwk(holderPrivateKey);
  return b64urlEncode(signBytes(holderProofInput(challenge), pair.seed));
}

/**
 * Checks a holder proof: the public JWK is a valid prime-order Ed25519 key (small-order keys refused), its
 * RFC 7638 thumbprint equals `cnfJkt`, and `proof` is a strict Ed25519 signature of the challenge. Never
 * throws on hostile input.
 */
export function verifyHolderProof(
  challenge: string,
  proof: string,
  cnfJkt: string,
  holderPublicJwk: unknown,
): { ok: true } | Failure {
  if (typeof challenge !== 'string' || !CHALLENGE.test(challenge))
    return fail('EXO_ERR_HOLDER_PROOF', 'malformed challenge');
  const key = importPublicJwk(holderPublicJwk);
  if (!key.ok) return fail('EXO_ERR_HOLDER_KEY', `holder key refused: ${key.reason}`);
  const thumbprint = jwkThumbprint(holderPublicJwk as { kty: 'OKP'; crv: 'Ed25519'; x: string });
  if (typeof cnfJkt !== 'string' || thumbprint !== cnfJkt) return fail('EXO_ERR_HOLDER_MISMATCH');
  const signature = typeof proof === 'string' ? b64urlDecode(proof) : undefined;
  if (!signature || !verifyStrict(signature, holderProofInput(challenge), key.publicKey)) {
    return fail('EXO_ERR_HOLDER_PROOF');
  }
  return { ok: true };
}
