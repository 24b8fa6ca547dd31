/** The granted program is the rule's filter AND the requested one: run it on packets to see that no request widens the rule. */
import { decodeProgram, interpret } from '@exonet/bpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holder, standardPolicy, startTestServer, type TestServer } from './harness.ts';

/** A minimal Ethernet/IPv4 frame with a UDP or TCP header (checksums are irrelevant to filters). */
function frame(proto: 'udp' | 'tcp', dst: string, dport: number): Uint8Array {
  const b = new Uint8Array(14 + 20 + 20);
  b.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
  b.set([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, proto === 'udp' ? 17 : 6, 0, 0, 10, 77, 0, 9], 14);
  b.set(dst.split('.').map(Number), 30);
  const dv = new DataView(b.buffer);
  dv.setUint16(34, 40000);
  dv.setUint16(36, dport);
  return b;
}
const run = (bpf: string, pkt: Uint8Array) =>
  interpret(decodeProgram(Buffer.from(bpf, 'base64url')), pkt, pkt.length, pkt.length);

let t: TestServer;
let alice: string;
beforeAll(async () => {
  t = await startTestServer();
  await standardPolicy(t);
  alice = await t.principal('alice', { groups: ['users', 'dns'] });
});
afterAll(async () => {
  await t.close();
});

describe('granted programs', () => {
  it('match only what both the rule and the request match', async () => {
    const dns = await t.call(
      'POST',
      '/v1/grants',
      { driver: 'drv1', dir: 'rx', filter: 'udp', port: 53, holder },
      alice,
    );
    expect(dns.status).toBe(201);
    expect(run(dns.json.program, frame('udp', '10.77.0.2', 53))).toBeGreaterThan(0);
    // The rule pins the driver's address and the port: the request cannot widen them.
    expect(run(dns.json.program, frame('udp', '10.77.0.3', 53))).toBe(0);
    expect(run(dns.json.program, frame('udp', '10.77.0.2', 54))).toBe(0);
    expect(run(dns.json.program, frame('tcp', '10.77.0.2', 53))).toBe(0);
  });

  it('a request asking for everything still gets only the rule', async () => {
    const wide = await t.call(
      'POST',
      '/v1/grants',
      { driver: 'drv1', dir: 'rx', filter: 'ip or not ip', port: 5353, holder },
      alice,
    );
    expect(wide.status).toBe(201);
    expect(run(wide.json.program, frame('udp', '10.77.0.2', 5353))).toBeGreaterThan(0);
    expect(run(wide.json.program, frame('udp', '10.77.0.2', 5354))).toBe(0);
    expect(run(wide.json.program, frame('tcp', '10.77.0.2', 5353))).toBe(0);
  });

  it('a request outside the rule is refused with the reason, not signed as a grant that matches nothing', async () => {
    const outside = await t.call(
      'POST',
      '/v1/grants',
      { driver: 'drv1', dir: 'rx', filter: 'tcp', port: 53, holder },
      alice,
    );
    expect(outside.status).toBe(403);
    expect(outside.json.error.code).toBe('EXO_ERR_GRANT_OUTSIDE_RULE');
    expect(outside.json.error.message).toMatch(/nothing in common/);
  });

  it('a narrower request narrows the grant', async () => {
    const narrow = await t.call(
      'POST',
      '/v1/grants',
      { driver: 'drv1', dir: 'rx', filter: 'udp and src port 40001', port: 5355, holder },
      alice,
    );
    expect(narrow.status).toBe(201);
    expect(run(narrow.json.program, frame('udp', '10.77.0.2', 5355))).toBe(0);
  });
});
