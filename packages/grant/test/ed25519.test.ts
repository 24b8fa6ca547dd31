import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import {
  generateKeyPair,
  importPublicJwk,
  keyPairFromSeed,
  publicKeyProblem,
  signBytes,
  verifyReference,
  verifyStrict,
} from '../src/index.ts';
import { edgeVectors, hex } from './helpers.ts';

const vectors = edgeVectors;

/** Only honest RFC 8032 signatures hold under strict verification; every edge case is refused. */
const accepted = new Set(['rfc8032-test1', 'rfc8032-test2']);

describe('strict Ed25519', () => {
  it.each(vectors)('$name: reference and fast path agree on the expected verdict', (v) => {
    const sig = hex(v.signature);
    const msg = hex(v.message);
    const pk = hex(v.pub_key);
    const expected = accepted.has(v.name);
    expect(verifyReference(sig, msg, pk)).toBe(expected);
    expect(verifyStrict(sig, msg, pk)).toBe(expected);
  });

  it('refuses the small-order forgery that lenient verifiers accept', () => {
    const v = vectors.find((x) => x.name === 'small-order-forgery')!;
    // The lenient (ZIP215) mode accepts it: the reason for the strict settings.
    expect(ed.verify(hex(v.signature), hex(v.message), hex(v.pub_key))).toBe(true);
    expect(verifyStrict(hex(v.signature), hex(v.message), hex(v.pub_key))).toBe(false);
    expect(publicKeyProblem(hex(v.pub_key))).toBe('small-order point');
  });

  it('signs byte-identically to @noble/ed25519 and both paths accept honest signatures', () => {
    for (let i = 0; i < 20; i++) {
      const pair = generateKeyPair();
      const msg = Uint8Array.from({ length: i * 7 }, (_, j) => (j * 31 + i) & 0xff);
      const sig = signBytes(msg, pair.seed);
      expect(Buffer.from(sig).toString('hex')).toBe(Buffer.from(ed.sign(msg, pair.seed)).toString('hex'));
      expect(verifyStrict(sig, msg, pair.publicKey)).toBe(true);
      expect(verifyReference(sig, msg, pair.publicKey)).toBe(true);
      const bad = Uint8Array.from(sig);
      bad[i % 64]! ^= 1;
      expect(verifyStrict(bad, msg, pair.publicKey)).toBe(false);
      expect(verifyReference(bad, msg, pair.publicKey)).toBe(false);
    }
  });

  it('refuses S >= L even when S - L would verify (malleability)', () => {
    const pair = keyPairFromSeed(new Uint8Array(32).fill(7));
    const msg = new Uint8Array([1, 2, 3]);
    const sig = signBytes(msg, pair.seed);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    const s2 = s + L;
    const mall = Uint8Array.from(sig);
    for (let i = 0; i < 32; i++) mall[32 + i] = Number((s2 >> BigInt(8 * i)) & 0xffn);
    expect(s2 < 2n ** 256n).toBe(true);
    expect(verifyStrict(mall, msg, pair.publicKey)).toBe(false);
    expect(verifyReference(mall, msg, pair.publicKey)).toBe(false);
  });

  it.each([
    ['not an object', null],
    ['wrong kty', { kty: 'EC', crv: 'Ed25519', x: 'AA' }],
    ['private part present', { kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43), d: 'A'.repeat(43) }],
    ['short x', { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }],
    ['padded x', { kty: 'OKP', crv: 'Ed25519', x: `${'A'.repeat(43)}=` }],
    ['identity key', { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex(`01${'00'.repeat(31)}`)).toString('base64url') }],
    ['wrong alg', { kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43), alg: 'ES256' }],
  ])('importPublicJwk refuses %s', (_name, jwk) => {
    expect(importPublicJwk(jwk).ok).toBe(false);
  });

  it('never throws on garbage', () => {
    for (const bad of [undefined, null, 'x', new Uint8Array(0), new Uint8Array(63)] as unknown[]) {
      expect(verifyStrict(bad as Uint8Array, new Uint8Array(1), bad as Uint8Array)).toBe(false);
      expect(verifyReference(bad as Uint8Array, new Uint8Array(1), bad as Uint8Array)).toBe(false);
    }
  });
});
