/**
 * Bearer tokens: `exo_` + 32 random bytes (base64url). Only the SHA-256 hash is stored; a presented token is
 * hashed, looked up by hash, and the stored hash compared again in constant time (so neither the lookup
 * path nor the comparison reveals how much of a guess was right).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ServerError } from './errors.ts';
import type { PolicyCache } from './policy/cache.ts';
import type { Principal } from './store/store.ts';

const TOKEN = /^exo_[A-Za-z0-9_-]{43}$/;

/** A fresh bearer token (show it once; store only its hash). */
export function generateToken(): string {
  return `exo_${randomBytes(32).toString('base64url')}`;
}

/** Hex SHA-256 of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Authenticates an Authorization header; throws EXO_ERR_AUTH_MISSING / EXO_ERR_AUTH_INVALID. Token records come
 * through the policy cache (invalidated on every token or principal change).
 */
export async function authenticate(header: string | undefined, policy: PolicyCache): Promise<Principal> {
  if (!header) throw new ServerError('EXO_ERR_AUTH_MISSING');
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  if (!match) throw new ServerError('EXO_ERR_AUTH_MISSING', 'expected "Authorization: Bearer <token>"');
  const token = match[1]!;
  // Same work for malformed and well-formed tokens up to the lookup.
  const hash = hashToken(token);
  const record = TOKEN.test(token) ? await policy.token(hash) : undefined;
  const expected = Buffer.from(record?.hash ?? '0'.repeat(64), 'hex');
  const equal = timingSafeEqual(expected, Buffer.from(hash, 'hex'));
  if (!record || !equal) throw new ServerError('EXO_ERR_AUTH_INVALID');
  const principal = await policy.principal(record.principal);
  if (!principal || principal.disabled)
    throw new ServerError('EXO_ERR_AUTH_INVALID', 'the principal is unknown or disabled');
  return principal;
}
