/**
 * JWS compact serialisation (RFC 7515 section 7.1) restricted to what exonet uses: a protected header of
 * exactly `alg` "Ed25519", `kid` and `typ`, a JSON object payload, an Ed25519 signature. Parsing is strict and
 * never throws; checks run in a fixed order (shape, header, algorithm, type, key, signature), as in jose.
 */
import { type SigningKey, signBytes, verifyStrict } from './ed25519.ts';
import { b64urlDecode, b64urlEncode, fromUtf8, parseJsonObject, utf8 } from './encoding.ts';
import { type Failure, fail } from './errors.ts';
import { type KeySet, keySetOf } from './jwks.ts';

/** The only accepted algorithm (RFC 9864 fully specified Ed25519). */
export const ALG = 'Ed25519';

/** Largest accepted token, in characters (a 4096-instruction program is about 44k characters). */
export const MAX_TOKEN_LENGTH = 65_536;

/** Signs `payload` (serialised as given, member order preserved) under the protected header {alg, kid, typ}. */
export function signCompact(typ: string, payload: object, key: SigningKey): string {
  const header = b64urlEncode(utf8(JSON.stringify({ alg: ALG, kid: key.kid, typ })));
  const body = b64urlEncode(utf8(JSON.stringify(payload)));
  const signingInput = `${header}.${body}`;
  return `${signingInput}.${b64urlEncode(signBytes(utf8(signingInput), key.seed))}`;
}

/** A verified JWS: its header and payload object. */
export interface VerifiedCompact {
  readonly ok: true;
  readonly header: { readonly alg: 'Ed25519'; readonly kid: string; readonly typ: string };
  readonly payload: Record<string, unknown>;
}

/**
 * Verifies a compact JWS: shape, header (exactly alg, kid, typ: unknown members such as crit, jku, jwk or b64
 * are refused rather than ignored), alg pinned, typ, key by kid from the key set, strict Ed25519 signature,
 * payload a JSON object. `codes` maps each failure to the caller's catalogue.
 */
export function verifyCompact(
  token: unknown,
  typ: string,
  jwks: KeySet | unknown,
  area: 'GRANT' | 'REVOCATION',
): VerifiedCompact | Failure {
  const malformed = area === 'GRANT' ? 'EXO_ERR_GRANT_MALFORMED' : 'EXO_ERR_REVOCATION_MALFORMED';
  const badSignature = area === 'GRANT' ? 'EXO_ERR_GRANT_SIGNATURE' : 'EXO_ERR_REVOCATION_SIGNATURE';
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return fail(malformed);
  const parts = token.trim().split('.');
  if (parts.length !== 3) return fail(malformed, 'expected three dot-separated parts');
  const [h, p, s] = parts as [string, string, string];
  const headerBytes = b64urlDecode(h);
  const payloadBytes = b64urlDecode(p);
  const signature = b64urlDecode(s);
  if (!headerBytes || !payloadBytes || !signature) return fail(malformed, 'a part is not strict base64url');
  const headerText = fromUtf8(headerBytes);
  const header = headerText === undefined ? undefined : parseJsonObject(headerText);
  const headerCode = area === 'GRANT' ? 'EXO_ERR_GRANT_HEADER' : 'EXO_ERR_REVOCATION_MALFORMED';
  if (!header) return fail(headerCode, 'protected header is not a JSON object');
  const extra = Object.keys(header).filter((k) => k !== 'alg' && k !== 'kid' && k !== 'typ');
  if (extra.length > 0) return fail(headerCode, `unsupported header member(s): ${extra.slice(0, 3).join(', ')}`);
  if (header.alg !== ALG)
    return fail(area === 'GRANT' ? 'EXO_ERR_GRANT_ALG' : 'EXO_ERR_REVOCATION_MALFORMED', 'alg is not "Ed25519"');
  if (header.typ !== typ)
    return fail(area === 'GRANT' ? 'EXO_ERR_GRANT_TYP' : 'EXO_ERR_REVOCATION_MALFORMED', `typ is not "${typ}"`);
  if (typeof header.kid !== 'string') return fail(headerCode, 'kid is missing');
  const keySet = keySetOf(jwks);
  if (!keySet.ok) return keySet;
  const entry = keySet.keySet.keys.get(header.kid);
  if (!entry) return fail(area === 'GRANT' ? 'EXO_ERR_GRANT_KID_UNKNOWN' : badSignature, 'no key with this kid');
  if (!entry.ok)
    return fail(area === 'GRANT' ? 'EXO_ERR_GRANT_KEY_INVALID' : badSignature, `key refused: ${entry.reason}`);
  if (!verifyStrict(signature, utf8(`${h}.${p}`), entry.publicKey)) return fail(badSignature);
  const payloadText = fromUtf8(payloadBytes);
  const payload = payloadText === undefined ? undefined : parseJsonObject(payloadText);
  if (!payload) return fail(area === 'GRANT' ? 'EXO_ERR_GRANT_CLAIMS' : malformed, 'payload is not a JSON object');
  return { ok: true, header: { alg: ALG, kid: header.kid, typ }, payload };
}
