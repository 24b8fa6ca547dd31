/** Record fixtures for the etcd store and cluster tests. */
import { randomUUID } from 'node:crypto';
import type { GrantRecord, ResourceClaim, SigningKeyRecord } from '../../src/store/store.ts';

/** A grant record with sensible defaults (not signed: the store never looks inside the JWS). */
export function grantRecord(overrides: Partial<GrantRecord> & { claims?: readonly ResourceClaim[] } = {}): GrantRecord {
  const now = Math.floor(Date.now() / 1000);
  const jti = overrides.jti ?? randomUUID();
  return {
    jti,
    sub: 'alice',
    driver: 'eth0',
    dir: 'rx',
    layer: 'task',
    rule: 'dns',
    kid: 'k1',
    cnfJkt: 'jkt',
    holderJwk: { kty: 'OKP', crv: 'Ed25519', x: 'x' },
    requestedFilter: 'udp port 53',
    port: 53,
    bpf: 'AA',
    exclusive: true,
    claims: [{ driver: 'eth0', resource: 'rx/udp/53', mode: 'exclusive' }],
    iat: now,
    nbf: now,
    exp: now + 300,
    jws: `jws-${jti}`,
    renewedFrom: null,
    revokedSeq: null,
    ...overrides,
  };
}

/** A signing key record (the sealed private key is a placeholder). */
export function keyRecord(kid: string, state: SigningKeyRecord['state'] = 'next'): SigningKeyRecord {
  return {
    kid,
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid },
    sealedPrivateKey: 'sealed',
    state,
    createdAt: Math.floor(Date.now() / 1000),
    activatedAt: null,
    retiredAt: null,
    lastGrantExp: 0,
  };
}

/** Polls `check` until it returns true (rejects after `timeoutMs`). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
