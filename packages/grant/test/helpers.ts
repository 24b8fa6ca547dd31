import { readFileSync } from 'node:fs';
import {
  b64urlEncode,
  type GrantClaims,
  generateHolderKey,
  jwkThumbprint,
  publicJwk,
  type SigningKey,
  signBytes,
  signingKeyFromSeed,
} from '../src/index.ts';

/** A fixed signing key (seed 0x01 * 32) so failures are reproducible. */
export const issuerKey: SigningKey = signingKeyFromSeed(new Uint8Array(32).fill(1), 'k1');
export const otherKey: SigningKey = signingKeyFromSeed(new Uint8Array(32).fill(2), 'k2');
export const jwks = { keys: [publicJwk(issuerKey.publicKey, 'k1')] };
export const holder = generateHolderKey();
export const holderJwk = publicJwk(holder.publicKey);

/** ret #262144: accepts every packet (one instruction, 8 bytes). */
export const acceptAll = Uint8Array.from([0x06, 0, 0, 0, 0, 0, 4, 0]);

export const NOW = 1_800_000_000;

export function claims(overrides: Partial<GrantClaims> = {}): GrantClaims {
  return {
    iss: 'exonet-test',
    sub: 'alice',
    aud: 'drv1',
    iat: NOW,
    nbf: NOW,
    exp: NOW + 300,
    jti: 'g-1',
    cnf: { jkt: jwkThumbprint(holderJwk) },
    dir: 'rx',
    layer: 'task',
    bpf: b64urlEncode(acceptAll),
    excl: false,
    rule: 'dns',
    ...overrides,
  };
}

/** Builds a compact JWS from arbitrary header and payload objects (for attacks). */
export function rawJws(header: object, payload: object, key: SigningKey = issuerKey): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${h}.${p}.${b64urlEncode(signBytes(Buffer.from(`${h}.${p}`), key.seed))}`;
}

/** A stand-in for the driver's BPF verifier: accepts programs whose last instruction is a return. */
export function stubVerifyProgram(program: Uint8Array): { ok: true } | { ok: false; message: string } {
  const last = program[program.length - 8]! & 0x07;
  return last === 0x06 ? { ok: true } : { ok: false, message: 'last instruction is not a return' };
}

/** One Ed25519 edge-case vector ("Taming the many EdDSAs", RFC 8032, the small-order forgery). */
export interface EdgeVector {
  name: string;
  message: string;
  pub_key: string;
  signature: string;
}

/** The edge-case vectors both the strict-verification and the differential tests run. */
export const edgeVectors: EdgeVector[] = JSON.parse(
  readFileSync(new URL('./vectors/ed25519-edge.json', import.meta.url), 'utf8'),
);

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
