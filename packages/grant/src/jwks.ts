/** JSON Web Key Sets (RFC 7517 section 5) of Ed25519 verification keys, read from untrusted input. */
import { type Ed25519PublicJwk, importPublicJwk, publicJwk } from './ed25519.ts';
import { type Failure, fail } from './errors.ts';

/** A JWKS document as published at `/.well-known/jwks.json`. */
export interface JwksDocument {
  readonly keys: readonly unknown[];
}

/** A key entry: the raw public key, or why the entry was refused (a kid whose entry is bad stays unusable). */
export type KeyEntry =
  | { readonly ok: true; readonly publicKey: Uint8Array }
  | { readonly ok: false; readonly reason: string };

/** Verification keys by kid, checked once. Build with {@link createKeySet}. */
export interface KeySet {
  readonly kind: 'exonet-key-set';
  readonly keys: ReadonlyMap<string, KeyEntry>;
}

const KID = /^[A-Za-z0-9._~-]{1,128}$/;
const MAX_KEYS = 256;

/**
 * Checks a JWKS document: a JSON object with a `keys` array (at most 256). Every entry with a well-formed
 * `kid` is recorded; entries that are not valid prime-order Ed25519 public keys, and kids that occur more than
 * once (ambiguous), are recorded as refused so a grant naming them fails with EXO_ERR_GRANT_KEY_INVALID.
 */
export function createKeySet(jwks: unknown): { ok: true; keySet: KeySet } | Failure {
  if (isKeySet(jwks)) return { ok: true, keySet: jwks };
  if (jwks === null || typeof jwks !== 'object' || !Array.isArray((jwks as JwksDocument).keys)) {
    return fail('EXO_ERR_JWKS_INVALID');
  }
  const entries = (jwks as JwksDocument).keys;
  if (entries.length > MAX_KEYS) return fail('EXO_ERR_JWKS_INVALID', `more than ${MAX_KEYS} keys`);
  const keys = new Map<string, KeyEntry>();
  for (const entry of entries) {
    const kid = (entry as { kid?: unknown } | null)?.kid;
    if (typeof kid !== 'string' || !KID.test(kid)) continue;
    if (keys.has(kid)) {
      keys.set(kid, { ok: false, reason: 'kid occurs more than once in the JWKS' });
      continue;
    }
    const imported = importPublicJwk(entry);
    keys.set(kid, imported.ok ? { ok: true, publicKey: imported.publicKey } : { ok: false, reason: imported.reason });
  }
  return { ok: true, keySet: { kind: 'exonet-key-set', keys } };
}

function isKeySet(value: unknown): value is KeySet {
  return (value as KeySet | null)?.kind === 'exonet-key-set' && (value as KeySet).keys instanceof Map;
}

const parsedDocuments = new WeakMap<object, KeySet | Failure>();

/** createKeySet with a per-document cache (documents are treated as immutable once passed in). */
export function keySetOf(jwks: unknown): { ok: true; keySet: KeySet } | Failure {
  if (jwks === null || typeof jwks !== 'object') return fail('EXO_ERR_JWKS_INVALID');
  if (isKeySet(jwks)) return { ok: true, keySet: jwks };
  let cached = parsedDocuments.get(jwks);
  if (!cached) {
    const created = createKeySet(jwks);
    cached = created.ok ? created.keySet : created;
    parsedDocuments.set(jwks, cached);
  }
  return 'kind' in cached ? { ok: true, keySet: cached } : cached;
}

/** Builds a JWKS document from public keys. */
export function jwksDocument(keys: readonly { kid: string; publicKey: Uint8Array }[]): { keys: Ed25519PublicJwk[] } {
  return { keys: keys.map((k) => publicJwk(k.publicKey, k.kid)) };
}
