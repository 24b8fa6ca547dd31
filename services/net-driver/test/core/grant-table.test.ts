import { encodeProgram, interpret, type Program, parseProgramText } from '@exonet/bpf';
import {
  b64urlEncode,
  createKeySet,
  type GrantClaims,
  generateHolderKey,
  generateSigningKey,
  jwksDocument,
  jwkThumbprint,
  publicJwk,
  RevocationSet,
  type SigningKey,
  signGrant,
} from '@exonet/grant';
import { describe, expect, it } from 'vitest';
import { CoreRefusal, GrantTable, type TaskIdentity } from '../../src/core/grant-table.ts';
import { udp } from '../support/frames.ts';

// tcpdump -ddd 'udp dst port 53' and 'udp dst port 54' (libpcap 1.10, Ethernet).
const udpPort = (port: number): Program =>
  parseProgramText(
    `16\n40 0 0 12\n21 0 4 34525\n48 0 0 20\n21 0 11 17\n40 0 0 56\n21 8 9 ${port}\n21 0 8 2048\n48 0 0 23\n21 0 6 17\n40 0 0 20\n69 4 0 8191\n177 0 0 14\n72 0 0 16\n21 0 1 ${port}\n6 0 0 262144\n6 0 0 0\n`,
  );

const now = 1_800_000_000;
const issuer = generateSigningKey();
const holder = generateHolderKey();
const holderJkt = jwkThumbprint(publicJwk(holder.publicKey));
const keySet = (() => {
  const r = createKeySet(jwksDocument([issuer]));
  if (!r.ok) throw new Error(r.reason);
  return r.keySet;
})();

let serial = 0;
function grant(overrides: Partial<GrantClaims> = {}, program: Program = udpPort(53), key: SigningKey = issuer) {
  const claims: GrantClaims = {
    iss: 'exonet-test',
    sub: 'alice',
    aud: 'drv-1',
    iat: now - 10,
    nbf: now - 10,
    exp: now + 300,
    jti: `g-${++serial}`,
    cnf: { jkt: holderJkt },
    dir: 'rx',
    layer: 'task',
    bpf: b64urlEncode(encodeProgram(program)),
    excl: false,
    rule: 'dns',
    ...overrides,
  };
  return { jws: signGrant(claims, key), claims };
}

function table(extra: { suspended?: () => boolean; revocations?: RevocationSet } = {}) {
  let clock = now;
  const t = new GrantTable({
    driverId: 'drv-1',
    keys: () => keySet,
    revocations: extra.revocations ?? new RevocationSet(),
    clockToleranceSec: 5,
    now: () => clock,
    compile: (p) => (pkt, wirelen, buflen) => interpret(p, pkt, wirelen, buflen),
    // Two "udp dst port" programs overlap only when their ports are equal.
    mayOverlap: (a, b) => a[13].k === b[13].k,
    suspended: extra.suspended ?? (() => false),
  });
  return { t, setClock: (s: number) => (clock = s) };
}

const alice: TaskIdentity = { id: 1, principal: 'alice', jkt: holderJkt };

describe('grant table', () => {
  it('installs a verified grant whose compiled filter runs on frames', () => {
    const { t } = table();
    const g = grant();
    const r = t.install(alice, g.jws);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const hit = udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 53 });
    const miss = udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 54 });
    expect(r.grant.filter(hit, hit.length, hit.length)).toBe(262144);
    expect(r.grant.filter(miss, miss.length, miss.length)).toBe(0);
    expect(t.ofTask(1).map((x) => x.jti)).toEqual([g.claims.jti]);
  });

  it('refuses, with the reason, and installs nothing', () => {
    const { t } = table();
    const other = generateSigningKey();
    const cases: [TaskIdentity, string, string][] = [
      [alice, grant({ aud: 'drv-2' }).jws, 'EXO_ERR_GRANT_AUDIENCE'],
      [alice, grant({ exp: now - 100, nbf: now - 400, iat: now - 400 }).jws, 'EXO_ERR_GRANT_EXPIRED'],
      [alice, grant({}, udpPort(53), other).jws, 'EXO_ERR_GRANT_KID_UNKNOWN'],
      [{ ...alice, principal: 'bob' }, grant().jws, CoreRefusal.SUBJECT_MISMATCH],
      [{ ...alice, jkt: 'someone-else' }, grant().jws, CoreRefusal.HOLDER_MISMATCH],
      [{ ...alice, jkt: null }, grant().jws, CoreRefusal.NO_KEY_PROOF],
      [alice, 'not a jws', ''],
      [alice, grant({ bpf: b64urlEncode(new Uint8Array(8)) }).jws, ''],
    ];
    for (const [who, jws, code] of cases) {
      const r = t.install(who, jws);
      expect(r.ok).toBe(false);
      if (!r.ok && code !== '') expect(r.code).toBe(code);
      if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
    }
    expect(t.size).toBe(0);
    const counted = [...t.refusals.values()].reduce((a, b) => a + b, 0);
    expect(counted).toBe(cases.length);
  });

  it('never lets two tasks hold overlapping filters when one is exclusive', () => {
    const { t } = table();
    const bob: TaskIdentity = { id: 2, principal: 'alice', jkt: holderJkt };
    expect(t.install(alice, grant({ excl: true }).jws).ok).toBe(true);
    const clash = t.install(bob, grant().jws);
    expect(clash.ok === false && clash.code).toBe(CoreRefusal.EXCLUSIVE_CONFLICT);
    expect(t.install(bob, grant({ excl: true }, udpPort(54)).jws).ok).toBe(true);
    // The same task may hold several grants of its own.
    expect(t.install(alice, grant().jws).ok).toBe(true);
  });

  it('fails closed while suspended, and refuses a duplicate', () => {
    let stale = true;
    const { t } = table({ suspended: () => stale });
    const g = grant();
    expect(t.install(alice, g.jws)).toMatchObject({ ok: false, code: CoreRefusal.FEED_STALE });
    stale = false;
    expect(t.install(alice, g.jws).ok).toBe(true);
    expect(t.install(alice, g.jws)).toMatchObject({ ok: false, code: CoreRefusal.DUPLICATE });
  });

  it('removes revoked, expired and dead tasks’ grants and says why', () => {
    const revocations = new RevocationSet();
    const { t } = table({ revocations });
    const changes: string[] = [];
    t.onChange((g, change) => changes.push(`${g.jti}:${change}`));
    const a = grant();
    const b = grant({ exp: now + 20 });
    const c = grant();
    for (const g of [a, b, c]) expect(t.install(alice, g.jws).ok).toBe(true);
    revocations.apply({
      iss: 'exonet-test',
      seq: 5,
      after: 0,
      iat: now,
      valid_until: now + 60,
      entries: [{ seq: 5, kind: 'jti', value: a.claims.jti, at: now, until: now + 300 }],
    } as never);
    expect(t.applyRevocations().map((g) => g.jti)).toEqual([a.claims.jti]);
    expect(t.nextExpiry()).toBe(now + 25);
    expect(t.expire(now + 24)).toEqual([]);
    expect(t.expire(now + 25).map((g) => g.jti)).toEqual([b.claims.jti]);
    expect(t.removeTask(1)).toBe(1);
    expect(changes).toEqual([
      `${a.claims.jti}:installed`,
      `${b.claims.jti}:installed`,
      `${c.claims.jti}:installed`,
      `${a.claims.jti}:revoked`,
      `${b.claims.jti}:expired`,
      `${c.claims.jti}:task-gone`,
    ]);
  });

  it('renews without a gap: the new grant is in before the old one leaves', () => {
    const { t } = table();
    const old = grant();
    t.install(alice, old.jws);
    const seen: string[] = [];
    t.onChange((_g, change) => seen.push(`${change}:${t.size}`));
    expect(t.install(alice, grant().jws, old.claims.jti).ok).toBe(true);
    expect(seen).toEqual(['installed:2', 'replaced:1']);
  });
});
