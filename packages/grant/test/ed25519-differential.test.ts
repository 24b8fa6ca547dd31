/**
 * Differential test of the strict Ed25519 verifiers: the portable reference (@noble/ed25519 strict plus our
 * torsion checks) against both fast paths (our prechecks + node:crypto, our prechecks + libsodium). They must
 * return the same verdict for every input: the edge-case vectors ("Taming the many EdDSAs", RFC 8032, the
 * small-order forgery) and random honest, mutated, mixed-order and malleated signatures.
 */
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyPairFromSeed, signBytes, sodiumAvailable, verifyFast, verifyReference } from '../src/ed25519.ts';
import { edgeVectors, hex } from './helpers.ts';

const vectors = edgeVectors;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** A point of order 8 (from the small-order list of "Taming the many EdDSAs"). */
const ORDER8 = ed.Point.fromBytes(hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'), false);

type Verdicts = { reference: boolean; node: boolean; sodium?: boolean };

function verdicts(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): Verdicts {
  const v: Verdicts = {
    reference: verifyReference(sig, msg, pk),
    node: verifyFast(sig, msg, pk, false),
  };
  if (sodiumAvailable()) v.sodium = verifyFast(sig, msg, pk, true);
  return v;
}

function expectAgree(v: Verdicts, expected?: boolean): void {
  expect(v.node, 'node:crypto vs reference').toBe(v.reference);
  if (v.sodium !== undefined) expect(v.sodium, 'libsodium vs reference').toBe(v.reference);
  if (expected !== undefined) expect(v.reference).toBe(expected);
}

/** S as a little-endian scalar. */
function scalarOf(sig: Uint8Array): bigint {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  return s;
}

function withScalar(sig: Uint8Array, s: bigint): Uint8Array {
  const out = Uint8Array.from(sig);
  for (let i = 0; i < 32; i++) out[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
  return out;
}

const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const msgArb = fc.uint8Array({ minLength: 0, maxLength: 300 });

describe('strict Ed25519: reference, node:crypto and libsodium agree', () => {
  it('libsodium is loaded on this platform (else only node:crypto is compared)', () => {
    // Not a requirement of the package, but the benchmark machine must exercise both fast paths here.
    expect(sodiumAvailable()).toBe(process.env.EXONET_ED25519 !== 'node');
  });

  it.each(vectors)('$name', (v) => {
    const accepted = v.name.startsWith('rfc8032-');
    expectAgree(verdicts(hex(v.signature), hex(v.message), hex(v.pub_key)), accepted);
  });

  it('honest signatures hold, and any single bit flip in signature, message or key is refused alike', () => {
    fc.assert(
      fc.property(seedArb, msgArb, fc.nat(), fc.constantFrom('sig', 'msg', 'key'), (seed, msg, bit, where) => {
        const pair = keyPairFromSeed(seed);
        const sig = signBytes(msg, seed);
        expectAgree(verdicts(sig, msg, pair.publicKey), true);
        const target =
          where === 'sig'
            ? Uint8Array.from(sig)
            : where === 'msg'
              ? Uint8Array.from(msg)
              : Uint8Array.from(pair.publicKey);
        if (target.length === 0) return;
        const i = bit % (target.length * 8);
        target[i >> 3]! ^= 1 << (i & 7);
        const v =
          where === 'sig'
            ? verdicts(target, msg, pair.publicKey)
            : where === 'msg'
              ? verdicts(sig, target, pair.publicKey)
              : verdicts(sig, msg, target);
        expectAgree(v, false);
      }),
      { numRuns: 200 },
    );
  });

  it('random 64-byte signatures and random 32-byte keys: same verdict (refused)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        msgArb,
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (sig, msg, pk) => expectAgree(verdicts(sig, msg, pk), false),
      ),
      { numRuns: 200 },
    );
  });

  it('malleated S (S + L) is refused by all, though the equation holds', () => {
    fc.assert(
      fc.property(seedArb, msgArb, (seed, msg) => {
        const pair = keyPairFromSeed(seed);
        const sig = signBytes(msg, seed);
        const s2 = scalarOf(sig) + L;
        fc.pre(s2 < 2n ** 256n);
        expectAgree(verdicts(withScalar(sig, s2), msg, pair.publicKey), false);
      }),
      { numRuns: 50 },
    );
  });

  it('mixed-order R (R + a point of order 8) and mixed-order A are refused by all', () => {
    fc.assert(
      fc.property(seedArb, msgArb, (seed, msg) => {
        const pair = keyPairFromSeed(seed);
        const sig = signBytes(msg, seed);
        const r = ed.Point.fromBytes(sig.subarray(0, 32), false).add(ORDER8).toBytes();
        const mixedR = Uint8Array.from(sig);
        mixedR.set(r, 0);
        expectAgree(verdicts(mixedR, msg, pair.publicKey), false);
        const mixedA = ed.Point.fromBytes(pair.publicKey, false).add(ORDER8).toBytes();
        expectAgree(verdicts(sig, msg, mixedA), false);
      }),
      { numRuns: 50 },
    );
  });

  it('small-order keys with an identity-R signature (the forgery) are refused by all', () => {
    const smallOrder = [
      '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0000000000000000000000000000000000000000000000000000000000000000',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    ];
    fc.assert(
      fc.property(fc.constantFrom(...smallOrder), msgArb, fc.constantFrom(...smallOrder), (pk, msg, r) => {
        const sig = new Uint8Array(64);
        sig.set(hex(r), 0);
        expectAgree(verdicts(sig, msg, hex(pk)), false);
      }),
      { numRuns: 50 },
    );
  });
});
