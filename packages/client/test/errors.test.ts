import { describe, expect, it } from 'vitest';
import { createLinkPair, createStack, ManualClock, NetError } from '../src/net/index.ts';
import { createSim } from './helpers/sim.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof NetError ? e.code : `not a NetError: ${String(e)}`;
  }
  return 'no error';
}

describe('bad inputs to the stack are typed errors with stable codes', () => {
  const link = () => createLinkPair().a;
  const clock = new ManualClock();
  it.each([
    ['an address without a prefix in range', { ipv4: '10.0.0.1/33' }],
    ['a malformed address', { ipv4: 'ten.zero' }],
    ['a malformed gateway', { ipv4: '10.0.0.1/24', gateway: '10.0.0' }],
    ['a malformed IPv6 address', { ipv4: '10.0.0.1/24', ipv6: { addresses: ['fd00:::1'] } }],
  ])('createStack rejects %s', (_name, opts) => {
    expect(codeOf(() => createStack({ link: link(), clock, ...opts }))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
  });

  it('port and address checks', async () => {
    const s = createStack({ link: link(), ipv4: '10.0.0.1/24', clock });
    for (const p of [0, -1, 65536, 1.5, Number.NaN]) {
      expect(codeOf(() => s.bindUdp(p))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
      expect(codeOf(() => s.tcpListen(p))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
      expect(codeOf(() => s.tcpConnect('10.0.0.2', p))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
    }
    const ep = s.bindUdp(7);
    expect(codeOf(() => s.bindUdp(7))).toBe('EXO_ERR_NET_PORT_IN_USE');
    s.tcpListen(80);
    expect(codeOf(() => s.tcpListen(80))).toBe('EXO_ERR_NET_PORT_IN_USE');
    expect(codeOf(() => s.tcpConnect('10.0.0', 80))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
    expect(codeOf(() => ep.send(new Uint8Array(1), 'nowhere', 9))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
    expect(codeOf(() => ep.send(new Uint8Array(1), '10.0.0.2', 0))).toBe('EXO_ERR_NET_INVALID_ARGUMENT');
    expect(codeOf(() => ep.send(new Uint8Array(70_000), '10.0.0.2', 9))).toBe('EXO_ERR_NET_MESSAGE_TOO_LONG');
    // Off-link without a gateway: not sent.
    expect(ep.send(new Uint8Array(1), '192.0.2.1', 9)).toBe(false);
    // TCP over IPv6 on a stack without IPv6: no route.
    await expect(s.tcpConnect('fd00::1', 80)).rejects.toMatchObject({ code: 'EXO_ERR_NET_NO_ROUTE' });
    ep.close();
    expect(codeOf(() => ep.send(new Uint8Array(1), '10.0.0.2', 9))).toBe('EXO_ERR_NET_CLOSED');
    s.close();
    expect(codeOf(() => s.bindUdp(8))).toBe('EXO_ERR_NET_CLOSED');
    expect(codeOf(() => s.tcpListen(81))).toBe('EXO_ERR_NET_CLOSED');
  });

  it('writing after end() is EXO_ERR_NET_CLOSED; accept on a closed listener too', async () => {
    const sim = createSim();
    const l = sim.b.tcpListen(80);
    l.accept();
    let err: unknown = null;
    sim.a.tcpConnect('10.0.0.2', 80).then(async (s) => {
      s.end();
      await s.write('late').catch((e) => {
        err = e;
      });
    });
    await sim.until(() => err !== null);
    expect((err as NetError).code).toBe('EXO_ERR_NET_CLOSED');
    l.close();
    await expect(l.accept()).rejects.toMatchObject({ code: 'EXO_ERR_NET_CLOSED' });
    sim.close();
  });
});
