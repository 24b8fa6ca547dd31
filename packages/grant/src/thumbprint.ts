/** RFC 7638 JWK thumbprints of Ed25519 public keys (the `cnf.jkt` of a grant, RFC 9449 section 6.1). */
import { createHash } from 'node:crypto';
import type { Ed25519PublicJwk } from './ed25519.ts';
import { b64urlEncode } from './encoding.ts';

/**
 * RFC 7638 thumbprint (SHA-256, base64url) of an Ed25519 public JWK: the hash of
 * `{"crv":"Ed25519","kty":"OKP","x":"..."}` (required members only, lexicographic order, no whitespace).
 * @throws TypeError when the JWK is not an OKP/Ed25519 key with a string `x`
 */
export function jwkThumbprint(publicJwk: Pick<Ed25519PublicJwk, 'kty' | 'crv' | 'x'>): string {
  if (publicJwk?.kty !== 'OKP' || publicJwk.crv !== 'Ed25519' || typeof publicJwk.x !== 'string') {
    throw new TypeError('expected an Ed25519 public JWK (kty OKP, crv Ed25519, x)');
  }
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":${JSON.stringify(publicJwk.x)}}`;
  return b64urlEncode(createHash('sha256').update(canonical, 'utf8').digest());
}
