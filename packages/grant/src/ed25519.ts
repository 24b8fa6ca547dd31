/**
 * Strict Ed25519 (RFC 8032 section 5.1.7 with the FIPS 186-5 checks), identical on the server and every
 * driver. A signature (R, S) by public key A on message M is accepted only when:
 *  1. A is 32 bytes, a canonical encoding (y < p, no "negative zero" x), on the curve, NOT of small order and
 *     of prime order (torsion-free): honest keys always are, and refusing mixed-order keys makes the cofactored
 *     and cofactorless equations agree;
 *  2. R is a canonical encoding of a torsion-free point;
 *  3. S < L;
 *  4. [S]B = R + [k]A with k = SHA-512(R || A || M) mod L.
 * The portable reference is @noble/ed25519 with `zip215: false` plus the torsion checks above. The fast path
 * runs the same key checks (cached per key) and S < L in our code, then a cofactorless equation check that
 * compares the encoding of R: libsodium (sodium-native) when it loads, about twice as fast as OpenSSL here
 * (verify 55 vs 110 us, sign 20 vs 37 us on the 2-core bench machine), else node:crypto (OpenSSL).
 * `EXONET_ED25519=node` forces node:crypto. All three agree on the vector set in test/vectors (RFC 8032,
 * "Taming the many EdDSAs", the small-order forgery) and on random and mutated signatures (differential
 * test).
 *
 * Why the verdicts agree: with A torsion-free (checked) and S < L (checked), [S]B - [k]A lies in the
 * prime-order subgroup and has one canonical encoding, so comparing it byte for byte with R refuses a
 * non-canonical R and any R with a small-order component, exactly as the reference's explicit checks do.
 */
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
} from 'node:crypto';
import { createRequire } from 'node:module';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { b64urlDecode, b64urlEncode } from './encoding.ts';

// noble's synchronous API needs a hash; set once (idempotent, the same function everywhere).
ed.hashes.sha512 = sha512;

/** The part of sodium-native this module uses. */
interface Sodium {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
}

/** libsodium through sodium-native, unless unavailable (no prebuilt binary) or EXONET_ED25519=node. */
const sodium: Sodium | undefined = (() => {
  if (process.env.EXONET_ED25519 === 'node') return undefined;
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return undefined;
  }
})();

/** Which library runs the fast path's curve arithmetic (for benchmark reports). */
export const ED25519_BACKEND: 'libsodium' | 'node:crypto' = sodium ? 'libsodium' : 'node:crypto';

/** Group order L. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** DER prefixes of SubjectPublicKeyInfo / PKCS#8 for Ed25519 (RFC 8410); the raw 32 bytes follow. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Why a public key is refused, or undefined when it is acceptable. */
export function publicKeyProblem(publicKey: Uint8Array): string | undefined {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return 'expected 32 bytes';
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(publicKey, false);
  } catch {
    return 'not a canonical encoding of a curve point';
  }
  if (point.isSmallOrder()) return 'small-order point';
  if (!point.isTorsionFree()) return 'point has a small-order component';
  return undefined;
}

/** Checked public keys: the torsion check costs a scalar multiplication, so remember verdicts (bounded). */
const keyVerdicts = new Map<string, KeyObject | null>();
const KEY_CACHE_LIMIT = 4096;
/** Fast path for the same key object (e.g. a key set entry): no hex encoding per verification. */
const keyVerdictsByObject = new WeakMap<
  Uint8Array,
  { readonly bytes: Uint8Array; readonly verdict: KeyObject | null }
>();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The node:crypto key object for a valid public key, or null when the key is refused. */
function checkedKeyObject(publicKey: Uint8Array): KeyObject | null {
  const seen = keyVerdictsByObject.get(publicKey);
  // The copy guards against a caller mutating the array in place after the first check.
  if (seen && sameBytes(publicKey, seen.bytes)) return seen.verdict;
  const verdict = checkedKeyObjectById(publicKey);
  keyVerdictsByObject.set(publicKey, { bytes: Uint8Array.from(publicKey), verdict });
  return verdict;
}

function checkedKeyObjectById(publicKey: Uint8Array): KeyObject | null {
  const id = Buffer.from(publicKey).toString('hex');
  const cached = keyVerdicts.get(id);
  if (cached !== undefined) return cached;
  const verdict =
    publicKeyProblem(publicKey) === undefined
      ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
      : null;
  if (keyVerdicts.size >= KEY_CACHE_LIMIT) keyVerdicts.clear();
  keyVerdicts.set(id, verdict);
  return verdict;
}

/** L as 32 little-endian bytes, for a constant-size comparison without BigInt (hot path). */
const L_BYTES = (() => {
  const out = new Uint8Array(32);
  let v = L;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
})();

/** S (little-endian, bytes 32..63 of the signature) < L. */
function scalarBelowL(sig: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = sig[32 + i]!;
    const b = L_BYTES[i]!;
    if (a !== b) return a < b;
  }
  return false;
}

/**
 * Strict verification through @noble/ed25519: the portable reference (slow, dependency-free).
 * Never throws; false for any malformed input.
 */
export function verifyReference(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
    if (publicKeyProblem(publicKey) !== undefined) return false;
    if (!scalarBelowL(signature)) return false;
    const R = ed.Point.fromBytes(signature.subarray(0, 32), false);
    if (!R.isTorsionFree()) return false;
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * Strict verification, fast path: the same key checks (cached per key), S < L, then libsodium (or node:crypto),
 * whose cofactorless check compares the canonical encoding of R. Never throws.
 */
export function verifyStrict(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return sodium ? verifyFast(signature, message, publicKey, true) : verifyFast(signature, message, publicKey, false);
}

/**
 * The fast path with a chosen library: libsodium (`useSodium`, when loaded) or node:crypto. Exported for the
 * differential tests, which compare both with {@link verifyReference}. Never throws.
 */
export function verifyFast(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  useSodium: boolean,
): boolean {
  try {
    if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
    if (!(message instanceof Uint8Array)) return false;
    const key = checkedKeyObject(publicKey);
    if (key === null || !scalarBelowL(signature)) return false;
    if (useSodium) {
      if (!sodium) return false;
      return sodium.crypto_sign_verify_detached(signature, message, publicKey);
    }
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** True when libsodium loaded (the differential tests then cover it too). */
export function sodiumAvailable(): boolean {
  return sodium !== undefined;
}

/** Public JWK of an Ed25519 key (RFC 8037). */
export interface Ed25519PublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid?: string;
  readonly alg?: 'Ed25519';
  readonly use?: 'sig';
}

/** Private JWK of an Ed25519 key (RFC 8037): `d` is the 32-byte seed. */
export interface Ed25519PrivateJwk extends Ed25519PublicJwk {
  readonly d: string;
}

/** An Ed25519 key pair: the 32-byte RFC 8032 seed and the public key. */
export interface Ed25519KeyPair {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A signing key of the permission server: a key pair with its key id. */
export interface SigningKey extends Ed25519KeyPair {
  readonly kid: string;
}

const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>();

function privateKeyObject(seed: Uint8Array): KeyObject {
  let key = privateKeyObjects.get(seed);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    privateKeyObjects.set(seed, key);
  }
  return key;
}

/** Derives the key pair of a 32-byte seed. */
export function keyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError('expected a 32-byte Ed25519 seed');
  const spki = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return { seed: Uint8Array.from(seed), publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)) };
}

/** Generates a fresh Ed25519 key pair from the operating system's CSPRNG. */
export function generateKeyPair(): Ed25519KeyPair {
  return keyPairFromSeed(new Uint8Array(randomBytes(32)));
}

/** libsodium secret keys (seed || public key) per seed object, derived once. */
const sodiumSecretKeys = new WeakMap<Uint8Array, Uint8Array>();

/**
 * Signs (deterministic RFC 8032 Ed25519, byte-identical whichever library: libsodium when loaded, else
 * node:crypto; both equal @noble/ed25519's sign, which the tests check).
 */
export function signBytes(message: Uint8Array, seed: Uint8Array): Uint8Array {
  if (sodium) {
    let secretKey = sodiumSecretKeys.get(seed);
    if (!secretKey) {
      if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError('expected a 32-byte Ed25519 seed');
      secretKey = new Uint8Array(64);
      sodium.crypto_sign_seed_keypair(new Uint8Array(32), secretKey, seed);
      sodiumSecretKeys.set(seed, secretKey);
    }
    const signature = new Uint8Array(64);
    sodium.crypto_sign_detached(signature, message, secretKey);
    return signature;
  }
  return new Uint8Array(nodeSign(null, message, privateKeyObject(seed)));
}

/** The public JWK of a key pair (with `kid` when given). */
export function publicJwk(publicKey: Uint8Array, kid?: string): Ed25519PublicJwk {
  const jwk: Ed25519PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: b64urlEncode(publicKey) };
  return kid === undefined ? jwk : { ...jwk, kid, alg: 'Ed25519', use: 'sig' };
}

/** The private JWK of a key pair (keep it secret). */
export function privateJwk(pair: Ed25519KeyPair, kid?: string): Ed25519PrivateJwk {
  return { ...publicJwk(pair.publicKey, kid), d: b64urlEncode(pair.seed) };
}

/**
 * Reads an Ed25519 public JWK from untrusted input: exactly kty OKP, crv Ed25519, a strict base64url `x` of 32
 * bytes that is a valid prime-order point. Returns the raw key or the reason it is refused.
 */
export function importPublicJwk(jwk: unknown): { ok: true; publicKey: Uint8Array } | { ok: false; reason: string } {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return { ok: false, reason: 'not a JSON object' };
  const j = jwk as Record<string, unknown>;
  if (j.kty !== 'OKP' || j.crv !== 'Ed25519') return { ok: false, reason: 'expected kty "OKP" and crv "Ed25519"' };
  if ('d' in j) return { ok: false, reason: 'a public JWK must not contain the private part d' };
  if (j.alg !== undefined && j.alg !== 'Ed25519' && j.alg !== 'EdDSA')
    return { ok: false, reason: 'alg is not Ed25519' };
  const x = typeof j.x === 'string' ? b64urlDecode(j.x) : undefined;
  if (x?.length !== 32) return { ok: false, reason: 'x is not 32 bytes of base64url' };
  // Cached per key: the torsion check costs a scalar multiplication.
  if (checkedKeyObject(x) === null) return { ok: false, reason: `x is refused: ${publicKeyProblem(x) ?? 'invalid'}` };
  return { ok: true, publicKey: x };
}

/** Reads an Ed25519 private JWK (for CLI tools and tests); throws on bad input. */
export function importPrivateJwk(jwk: unknown): Ed25519KeyPair {
  const j = (jwk ?? {}) as Record<string, unknown>;
  const d = typeof j.d === 'string' ? b64urlDecode(j.d) : undefined;
  if (j.kty !== 'OKP' || j.crv !== 'Ed25519' || !d || d.length !== 32) {
    throw new TypeError('expected an Ed25519 private JWK (kty OKP, crv Ed25519, d of 32 bytes)');
  }
  const pair = keyPairFromSeed(d);
  if (typeof j.x === 'string' && j.x !== b64urlEncode(pair.publicKey)) throw new TypeError('x does not match d');
  return pair;
}
