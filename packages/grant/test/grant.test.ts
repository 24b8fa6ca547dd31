import { importJWK, jwtVerify, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  createKeySet,
  generateHolderKey,
  jwkThumbprint,
  publicJwk,
  RevocationSet,
  signGrant,
  type VerifyGrantOptions,
  verifyGrant,
} from '../src/index.ts';
import {
  acceptAll,
  claims,
  holder,
  holderJwk,
  issuerKey,
  jwks,
  NOW,
  otherKey,
  rawJws,
  stubVerifyProgram,
} from './helpers.ts';

const options: VerifyGrantOptions = { jwks, audience: 'drv1', now: NOW + 10, verifyProgram: stubVerifyProgram };

describe('signGrant / verifyGrant', () => {
  it('round-trips and returns the program byte for byte', () => {
    const jws = signGrant(claims(), issuerKey);
    const result = verifyGrant(jws, options);
    expect(result).toMatchObject({ ok: true, kid: 'k1', claims: { sub: 'alice', aud: 'drv1' } });
    expect(result.ok && Buffer.from(result.program).equals(Buffer.from(acceptAll))).toBe(true);
  });

  it('is readable by jose with the algorithm pinned to Ed25519', async () => {
    const jws = signGrant(
      claims({
        iat: Math.floor(Date.now() / 1000),
        nbf: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 60,
      }),
      issuerKey,
    );
    const key = await importJWK({ ...publicJwk(issuerKey.publicKey), alg: 'Ed25519' }, 'Ed25519');
    const { payload, protectedHeader } = await jwtVerify(jws, key, {
      algorithms: ['Ed25519'],
      typ: 'exonet-grant+jwt',
      audience: 'drv1',
    });
    expect(protectedHeader).toEqual({ alg: 'Ed25519', kid: 'k1', typ: 'exonet-grant+jwt' });
    expect(payload.sub).toBe('alice');
  });

  it('accepts a pre-built key set', () => {
    const set = createKeySet(jwks);
    expect(set.ok).toBe(true);
    if (set.ok) expect(verifyGrant(signGrant(claims(), issuerKey), { ...options, jwks: set.keySet }).ok).toBe(true);
  });

  it('refuses to sign malformed claims', () => {
    expect(() => signGrant(claims({ dir: 'up' as 'rx' }), issuerKey)).toThrow(/dir/);
    expect(() => signGrant(claims({ bpf: 'AAAA' }), issuerKey)).toThrow(/bpf/);
    expect(() => signGrant(claims({ exp: NOW }), issuerKey)).toThrow(/exp/);
  });
});

describe('attacks on grants, each refused', () => {
  const good = signGrant(claims(), issuerKey);
  const [h, p, s] = good.split('.') as [string, string, string];
  const header = { alg: 'Ed25519', kid: 'k1', typ: 'exonet-grant+jwt' };

  const cases: [string, () => unknown | Promise<unknown>, string, Partial<VerifyGrantOptions>?][] = [
    [
      'forged signature (one bit flipped)',
      () =>
        `${h}.${p}.${Buffer.from(Buffer.from(s, 'base64url').map((b, i) => (i === 5 ? b ^ 1 : b))).toString('base64url')}`,
      'EXO_ERR_GRANT_SIGNATURE',
    ],
    ['signature by another key under our kid', () => rawJws(header, claims(), otherKey), 'EXO_ERR_GRANT_SIGNATURE'],
    ['alg none', () => new UnsecuredJWT({ ...claims() }).encode(), 'EXO_ERR_GRANT_ALG'],
    [
      'alg none with a signature part',
      () =>
        `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'k1', typ: 'exonet-grant+jwt' })).toString('base64url')}.${p}.${s}`,
      'EXO_ERR_GRANT_ALG',
    ],
    [
      'HS256 with the public key as secret',
      () =>
        new SignJWT({ ...claims() })
          .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'exonet-grant+jwt' })
          .sign(issuerKey.publicKey),
      'EXO_ERR_GRANT_ALG',
    ],
    [
      'the deprecated polymorphic EdDSA name',
      () => rawJws({ alg: 'EdDSA', kid: 'k1', typ: 'exonet-grant+jwt' }, claims()),
      'EXO_ERR_GRANT_ALG',
    ],
    ['wrong typ', () => rawJws({ ...header, typ: 'JWT' }, claims()), 'EXO_ERR_GRANT_TYP'],
    [
      'extra header member (jwk)',
      () => rawJws({ ...header, jwk: publicJwk(otherKey.publicKey) }, claims()),
      'EXO_ERR_GRANT_HEADER',
    ],
    ['crit header', () => rawJws({ ...header, crit: ['exp'] }, claims()), 'EXO_ERR_GRANT_HEADER'],
    ['unknown kid', () => rawJws({ ...header, kid: 'k9' }, claims()), 'EXO_ERR_GRANT_KID_UNKNOWN'],
    ['wrong aud', () => signGrant(claims({ aud: 'drv2' }), issuerKey), 'EXO_ERR_GRANT_AUDIENCE'],
    ['aud as an array', () => rawJws(header, { ...claims(), aud: ['drv1'] }), 'EXO_ERR_GRANT_CLAIMS'],
    ['expired', () => signGrant(claims({ exp: NOW + 1 }), issuerKey), 'EXO_ERR_GRANT_EXPIRED'],
    [
      'not yet valid',
      () => signGrant(claims({ iat: NOW + 100, nbf: NOW + 100, exp: NOW + 400 }), issuerKey),
      'EXO_ERR_GRANT_NOT_YET_VALID',
    ],
    [
      'lifetime above the staleness bound',
      () => signGrant(claims(), issuerKey),
      'EXO_ERR_GRANT_LIFETIME',
      { maxLifetimeSec: 60 },
    ],
    [
      'revoked by jti',
      () => signGrant(claims(), issuerKey),
      'EXO_ERR_GRANT_REVOKED',
      { isRevoked: (c) => c.jti === 'g-1' },
    ],
    [
      'revocation check that throws (fail closed)',
      () => signGrant(claims(), issuerKey),
      'EXO_ERR_GRANT_REVOKED',
      {
        isRevoked: () => {
          throw new Error('x');
        },
      },
    ],
    [
      'tampered bpf claim',
      () =>
        `${h}.${Buffer.from(JSON.stringify({ ...claims(), bpf: Buffer.from([6, 0, 0, 0, 0xff, 0xff, 0, 0]).toString('base64url') })).toString('base64url')}.${s}`,
      'EXO_ERR_GRANT_SIGNATURE',
    ],
    [
      'program rejected by the BPF verifier',
      () => signGrant(claims({ bpf: Buffer.from([0x28, 0, 0, 0, 12, 0, 0, 0]).toString('base64url') }), issuerKey),
      'EXO_ERR_GRANT_PROGRAM',
    ],
    [
      'wrong issuer',
      () => signGrant(claims({ iss: 'evil' }), issuerKey),
      'EXO_ERR_GRANT_ISSUER',
      { issuer: 'exonet-test' },
    ],
    ['two parts only', () => `${h}.${p}`, 'EXO_ERR_GRANT_MALFORMED'],
    ['padding in base64url', () => `${h}=.${p}.${s}`, 'EXO_ERR_GRANT_MALFORMED'],
    ['not a string', () => 42, 'EXO_ERR_GRANT_MALFORMED'],
    ['huge token', () => 'a'.repeat(70_000), 'EXO_ERR_GRANT_MALFORMED'],
    ['claims not an object', () => rawJws(header, ['x'] as unknown as object), 'EXO_ERR_GRANT_CLAIMS'],
  ];

  it.each(cases)('%s', async (_name, make, code, extra) => {
    const token = await make();
    const result = verifyGrant(token, { ...options, ...extra });
    expect(result).toMatchObject({ ok: false, code });
  });

  it('a small-order key in the JWKS cannot be used to forge (the measured forgery)', () => {
    const identity = `01${'00'.repeat(31)}`;
    const forgedJwks = {
      keys: [{ kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity, 'hex').toString('base64url'), kid: 'k0' }],
    };
    const h0 = Buffer.from(JSON.stringify({ ...header, kid: 'k0' })).toString('base64url');
    const sig = Buffer.from(`${identity}${'00'.repeat(32)}`, 'hex').toString('base64url');
    const token = `${h0}.${p}.${sig}`;
    expect(verifyGrant(token, { ...options, jwks: forgedJwks })).toMatchObject({
      ok: false,
      code: 'EXO_ERR_GRANT_KEY_INVALID',
    });
  });

  it('a RevocationSet revokes by subject only grants issued up to the revocation', () => {
    const set = new RevocationSet();
    set.apply({
      iss: 'x',
      seq: 3,
      after: 0,
      iat: NOW,
      valid_until: NOW + 60,
      entries: [{ seq: 3, kind: 'sub', value: 'alice', at: NOW, until: NOW + 300 }],
    });
    expect(verifyGrant(good, { ...options, isRevoked: set.isRevoked })).toMatchObject({
      code: 'EXO_ERR_GRANT_REVOKED',
    });
    const later = signGrant(claims({ iat: NOW + 1, nbf: NOW + 1, exp: NOW + 200 }), issuerKey);
    expect(verifyGrant(later, { ...options, isRevoked: set.isRevoked }).ok).toBe(true);
  });

  it('the holder thumbprint in the grant is the RFC 7638 thumbprint of the holder key', () => {
    expect(claims().cnf.jkt).toBe(jwkThumbprint(holderJwk));
    expect(jwkThumbprint(publicJwk(generateHolderKey().publicKey))).not.toBe(claims().cnf.jkt);
    expect(holder.publicKey.length).toBe(32);
  });
});

describe('bpfProgramVerifier', () => {
  it('accepts a verified program and refuses one the BPF verifier rejects', async () => {
    const { bpfProgramVerifier } = await import('../src/index.ts');
    expect(bpfProgramVerifier(acceptAll)).toEqual({ ok: true });
    // ld [12] without a final return.
    expect(bpfProgramVerifier(Uint8Array.from([0x20, 0, 0, 0, 12, 0, 0, 0]))).toMatchObject({ ok: false });
    expect(bpfProgramVerifier(new Uint8Array(3))).toMatchObject({ ok: false });
  });
});
