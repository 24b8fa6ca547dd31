import { DriverConnection, GrantRequestError, TaskNet } from '@exonet/client';
import { afterEach, describe, expect, it } from 'vitest';
import { DRIVER_MAC, PEER_MAC, until } from '../services/net-driver/test/support/core-fixture.ts';
import { udp } from '../services/net-driver/test/support/frames.ts';
import { serviceOnCable } from '../services/net-driver/test/support/service-fixture.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('TaskNet: sockets without sockets', () => {
  it('bindUdp obtains the grants, answers on the wire, and closing releases them', async () => {
    const { ps, driver, peer } = await serviceOnCable(cleanups);
    peer.driver.setReceiveFilter({ promiscuous: true });
    await ps.admin('POST', '/v1/rules', {
      id: 'udp-port-out',
      who: { users: ['alice'] },
      dir: 'tx',
      filter: 'udp and src host {driver.ip} and src port {port}',
      ports: [{ from: 1, to: 65535 }],
      maxLifetimeSec: 3600,
    });
    const conn = await DriverConnection.attach(driver.attach('alice').handle);
    cleanups.push(() => conn.close());
    const net = TaskNet.open({
      connection: conn,
      server: ps.url,
      token: ps.tokens.alice,
      driver: 'drv-1',
      ipv4: '10.77.0.2/24',
    });
    cleanups.push(() => net.close());

    const ep = await net.bindUdp(5000);
    expect(
      driver.core.grants
        .ofTask(driver.core.sessions()[0].id)
        .map((g) => g.claims.dir)
        .sort(),
    ).toEqual(['rx', 'tx']);
    peer.driver.transmit(
      udp({
        srcMac: PEER_MAC,
        dstMac: DRIVER_MAC,
        src: '10.77.0.1',
        dst: '10.77.0.2',
        sport: 6000,
        dport: 5000,
        payload: new TextEncoder().encode('ping'),
      }),
    );
    peer.driver.txCommit();
    const d = await ep.receive();
    expect(new TextDecoder().decode(d?.data)).toBe('ping');
    expect(ep.reply(d!, new TextEncoder().encode('pong'))).toBe(true);
    const wire: Uint8Array[] = [];
    await until(() => {
      peer.driver.receive((f, len) => wire.push(f.slice(0, len)));
      return wire.some((f) => f[23] === 17 && ((f[34] << 8) | f[35]) === 5000);
    }, 'the reply on the wire');

    // The port is held (shared): an exclusive claim on it is refused by the server (409) with its reason.
    const clash = await net.bindUdp(5000, { exclusive: true }).catch((e: unknown) => e);
    expect(clash).toBeInstanceOf(GrantRequestError);
    expect((clash as GrantRequestError).status).toBe(409);

    ep.close();
    await until(() => driver.core.grants.size === 0, 'grants released');
  });
});
