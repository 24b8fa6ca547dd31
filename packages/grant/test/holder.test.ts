import { calculateJwkThumbprint } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  createChallenge,
  generateHolderKey,
  jwkThumbprint,
  privateJwk,
  publicJwk,
  signChallenge,
  verifyHolderProof,
} from '../src/index.ts';
import { holder, holderJwk } from './helpers.ts';

describe('holder proof', () => {
  const jkt = jwkThumbprint(holderJwk);

  it('matches jose and the RFC 8037 appendix A.3 thumbprint', async () => {
    expect(jkt).toBe(await calculateJwkThumbprint(holderJwk, 'sha256'));
    const rfc = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' } as const;
    expect(jwkThumbprint(rfc)).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });

  it('accepts the holder signing a fresh challenge (key pair or private JWK)', () => {
    const challenge = createChallenge();
    expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(verifyHolderProof(challenge, signChallenge(challenge, holder), jkt, holderJwk)).toEqual({ ok: true });
    expect(verifyHolderProof(challenge, signChallenge(challenge, privateJwk(holder)), jkt, holderJwk).ok).toBe(true);
  });

  it('refuses a grant presented with another holder key', () => {
    const thief = generateHolderKey();
    const challenge = createChallenge();
    const proof = signChallenge(challenge, thief);
    expect(verifyHolderProof(challenge, proof, jkt, publicJwk(thief.publicKey))).toMatchObject({
      code: 'EXO_ERR_HOLDER_MISMATCH',
    });
    expect(verifyHolderProof(challenge, proof, jkt, holderJwk)).toMatchObject({ code: 'EXO_ERR_HOLDER_PROOF' });
  });

  it('refuses a proof for another challenge', () => {
    const proof = signChallenge(createChallenge(), holder);
    expect(verifyHolderProof(createChallenge(), proof, jkt, holderJwk)).toMatchObject({ code: 'EXO_ERR_HOLDER_PROOF' });
  });

  it('refuses a small-order holder key, even with the matching thumbprint and the zero signature', () => {
    const identity = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.from(`01${'00'.repeat(31)}`, 'hex').toString('base64url'),
    } as const;
    const proof = Buffer.from(`01${'00'.repeat(63)}`, 'hex').toString('base64url');
    expect(verifyHolderProof(createChallenge(), proof, jwkThumbprint(identity), identity)).toMatchObject({
      code: 'EXO_ERR_HOLDER_KEY',
    });
  });

  it.each([
    ['empty challenge', '', 'x', 'EXO_ERR_HOLDER_PROOF'],
    ['garbage proof', createChallenge(), '!!', 'EXO_ERR_HOLDER_PROOF'],
  ])('%s', (_n, challenge, proof, code) => {
    expect(verifyHolderProof(challenge, proof, jkt, holderJwk)).toMatchObject({ code });
  });
});
