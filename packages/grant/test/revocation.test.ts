import { describe, expect, it } from 'vitest';
import { type RevocationList, RevocationSet, signRevocationList, verifyRevocationList } from '../src/index.ts';
import { issuerKey, jwks, NOW, otherKey, rawJws } from './helpers.ts';

const list = (o: Partial<RevocationList> = {}): RevocationList => ({
  iss: 'exonet-test',
  seq: 7,
  after: 2,
  iat: NOW,
  valid_until: NOW + 60,
  entries: [
    { seq: 3, kind: 'jti', value: 'g-1', at: NOW - 5, until: NOW + 300 },
    { seq: 7, kind: 'kid', value: 'k0', at: NOW - 1, until: NOW + 300 },
  ],
  ...o,
});
const opts = { jwks, now: NOW + 1 };

describe('revocation lists', () => {
  it('round-trips and feeds a RevocationSet', () => {
    const result = verifyRevocationList(signRevocationList(list(), issuerKey), { ...opts, afterSeq: 2 });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const set = new RevocationSet();
    set.apply(result.list);
    expect(set.seq).toBe(7);
    expect(set.isFresh(NOW + 59)).toBe(true);
    expect(set.isFresh(NOW + 60)).toBe(false);
    set.prune(NOW + 1000);
  });

  it('refuses a bad signature', () => {
    const token = signRevocationList(list(), issuerKey);
    const forged = rawJws(
      { alg: 'Ed25519', kid: 'k1', typ: 'exonet-revocations+jwt' },
      list({ entries: [] }),
      otherKey,
    );
    expect(verifyRevocationList(forged, opts)).toMatchObject({ code: 'EXO_ERR_REVOCATION_SIGNATURE' });
    const [h, p] = token.split('.');
    expect(verifyRevocationList(`${h}.${p}.${'A'.repeat(86)}`, opts)).toMatchObject({
      code: 'EXO_ERR_REVOCATION_SIGNATURE',
    });
  });

  it('refuses an older sequence than held, and a gap', () => {
    const token = signRevocationList(list(), issuerKey);
    expect(verifyRevocationList(token, { ...opts, afterSeq: 9 })).toMatchObject({ code: 'EXO_ERR_REVOCATION_STALE' });
    expect(verifyRevocationList(token, { ...opts, afterSeq: 1 })).toMatchObject({ code: 'EXO_ERR_REVOCATION_STALE' });
  });

  it('refuses an expired list, a grant typ, and malformed entries', () => {
    expect(verifyRevocationList(signRevocationList(list(), issuerKey), { ...opts, now: NOW + 100 })).toMatchObject({
      code: 'EXO_ERR_REVOCATION_EXPIRED',
    });
    const asGrant = rawJws({ alg: 'Ed25519', kid: 'k1', typ: 'exonet-grant+jwt' }, list());
    expect(verifyRevocationList(asGrant, opts)).toMatchObject({ code: 'EXO_ERR_REVOCATION_MALFORMED' });
    const unordered = rawJws(
      { alg: 'Ed25519', kid: 'k1', typ: 'exonet-revocations+jwt' },
      { ...list(), entries: [...list().entries].reverse() },
    );
    expect(verifyRevocationList(unordered, opts)).toMatchObject({ code: 'EXO_ERR_REVOCATION_MALFORMED' });
    expect(() => signRevocationList(list({ after: 9 }), issuerKey)).toThrow();
  });
});
