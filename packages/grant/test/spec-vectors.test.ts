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

describe('exonet grant verify on the vectors', () => {
  it('holds for the valid vector and names the reason for the others', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { verifyGrantCommand } = await import('../src/cli.ts');
    const dir = mkdtempSync(join(tmpdir(), 'exonet-vectors-'));
    try {
      writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [v.issuer.jwk] }));
      writeFileSync(join(dir, 'grant'), `${v.grant}\n`);
      writeFileSync(join(dir, 'revocations'), v.revocation_list.jws);
      const base = { grant: join(dir, 'grant'), jwks: join(dir, 'jwks.json'), aud: 'drv1' };
      expect(await verifyGrantCommand({ ...base, now: 1_800_000_010 })).toMatchObject({
        ok: true,
        claims: { jti: 'g_vector1' },
      });
      expect(
        await verifyGrantCommand({ ...base, now: 1_800_000_110, revocations: join(dir, 'revocations') }),
      ).toMatchObject({ code: 'EXO_ERR_GRANT_REVOKED' });
      // A revocation list past its valid_until refuses the grant (fail closed).
      expect(
        await verifyGrantCommand({ ...base, now: 1_800_000_200, revocations: join(dir, 'revocations') }),
      ).toMatchObject({ code: 'EXO_ERR_REVOCATION_EXPIRED' });
      expect(await verifyGrantCommand({ ...base, aud: 'drv2', now: 1_800_000_010 })).toMatchObject({
        code: 'EXO_ERR_GRANT_AUDIENCE',
      });
      expect(await verifyGrantCommand({ ...base, jwks: join(dir, 'missing.json'), now: 1_800_000_010 })).toMatchObject({
        code: 'EXO_ERR_JWKS_INVALID',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
