/** docs/grants.md is a specification with test vectors; this keeps the document and the code in step. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  bpfProgramVerifier,
  grantErrorCodes,
  jwkThumbprint,
  keyPairFromSeed,
  publicJwk,
  RevocationSet,
  signChallenge,
  signGrant,
  signingKeyFromSeed,
  signRevocationList,
  verifyGrant,
  verifyHolderProof,
  verifyRevocationList,
} from '../src/index.ts';

const doc = readFileSync(new URL('../../../docs/grants.md', import.meta.url), 'utf8');
const block = /```json exonet-grant-vectors\n([\s\S]*?)\n```/.exec(doc);
const v = JSON.parse(block?.[1] ?? 'null');
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

describe('docs/grants.md test vectors', () => {
  it('has the vectors block', () => {
    expect(v).toBeTruthy();
  });

  it('derives the keys and the thumbprint', () => {
    const issuer = signingKeyFromSeed(hex(v.issuer.seed));
    expect(publicJwk(issuer.publicKey, issuer.kid)).toEqual(v.issuer.jwk);
    const holder = keyPairFromSeed(hex(v.holder.seed));
    expect(publicJwk(holder.publicKey)).toEqual(v.holder.jwk);
    expect(jwkThumbprint(v.holder.jwk)).toBe(v.holder.jkt);
    expect(v.claims.cnf.jkt).toBe(v.holder.jkt);
    expect(Buffer.from(v.claims.bpf, 'base64url').toString('hex')).toBe(v.program_hex);
  });

  it('produces the exact grant, holder proof and revocation list bytes', () => {
    const issuer = signingKeyFromSeed(hex(v.issuer.seed));
    expect(signGrant(v.claims, issuer)).toBe(v.grant);
    const holder = keyPairFromSeed(hex(v.holder.seed));
    expect(signChallenge(v.holder_proof.challenge, holder)).toBe(v.holder_proof.proof);
    expect(verifyHolderProof(v.holder_proof.challenge, v.holder_proof.proof, v.holder.jkt, v.holder.jwk)).toEqual({
      ok: true,
    });
    expect(signRevocationList(v.revocation_list.claims, issuer)).toBe(v.revocation_list.jws);
  });

  it('gives every listed verdict', () => {
    const jwks = { keys: [v.issuer.jwk] };
    for (const c of v.verdicts as {
      name: string;
      jws: string;
      aud: string;
      now: number;
      expect: string;
      jwks?: unknown;
      revocations?: string;
    }[]) {
      let isRevoked: RevocationSet['isRevoked'] | undefined;
      if (c.revocations) {
        const list = verifyRevocationList(c.revocations, { jwks, now: c.now });
        expect(list.ok, c.name).toBe(true);
        const set = new RevocationSet();
        if (list.ok) set.apply(list.list);
        isRevoked = set.isRevoked;
      }
      const r = verifyGrant(c.jws, {
        jwks: c.jwks ?? jwks,
        audience: c.aud,
        now: c.now,
        isRevoked,
        verifyProgram: bpfProgramVerifier,
      });
      expect(r.ok ? 'ok' : r.code, c.name).toBe(c.expect);
    }
  });

  it('documents every error code', () => {
    for (const code of Object.keys(grantErrorCodes)) expect(doc, code).toContain(`\`${code}\``);
  });
});
