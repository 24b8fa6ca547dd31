/** Key generation helpers for the permission server, tools and tests. */
import { createHash } from 'node:crypto';
import { type Ed25519KeyPair, generateKeyPair, keyPairFromSeed, type SigningKey } from './ed25519.ts';
import { b64urlEncode } from './encoding.ts';

/** A kid derived from the public key (first 16 bytes of its SHA-256, base64url), so it never collides by accident. */
export function kidOf(publicKey: Uint8Array): string {
  return b64urlEncode(createHash('sha256').update(publicKey).digest().subarray(0, 16));
}

/** A fresh signing key with a kid (derived from the key unless given). */
export function generateSigningKey(kid?: string): SigningKey {
  const pair = generateKeyPair();
  return { ...pair, kid: kid ?? kidOf(pair.publicKey) };
}

/** A signing key from a known seed (test vectors, restoring a stored key). */
export function signingKeyFromSeed(seed: Uint8Array, kid?: string): SigningKey {
  const pair = keyPairFromSeed(seed);
  return { ...pair, kid: kid ?? kidOf(pair.publicKey) };
}

/** A fresh holder (task) key pair. */
export function generateHolderKey(): Ed25519KeyPair {
  return generateKeyPair();
}
