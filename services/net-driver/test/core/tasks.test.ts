import type { ChildProcess } from 'node:child_process';
import { compileExpression, encodeProgram } from '@exonet/bpf';
import { DriverConnection } from '@exonet/client';
import { b64urlEncode, type GrantClaims, generateSigningKey, jwksDocument, signGrant } from '@exonet/grant';
import { afterEach, describe, expect, it } from 'vitest';
import { createInThreadNic } from '../../src/nic/in-thread.ts';
import { DriverService } from '../../src/service/driver-service.ts';
import { Cable } from '../../src/wire/cable.ts';
import { coreFixture, DRIVER_MAC, PEER_MAC, until } from '../support/core-fixture.ts';
import { ethernet, udp } from '../support/frames.ts';

const toDriver = { srcMac: PEER_MAC, dstMac: DRIVER_MAC, src: '10.77.0.1', dst: '10.77.0.2' };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('many tasks, dead tasks and hostile frames', () => {
  it('serves 1,000 attached tasks, each receiving exactly its own port', async () => {
    const fx = coreFixture();
    cleanups.push(() => fx.close());
    const N = 1000;
    const conns: DriverConnection[] = [];
    const counts = new Int32Array(N);
    const start = async (i: number) => {
      const { handle } = fx.core.attach({ principal: 'alice', frameCount: 8 });
      const c = await DriverConnection.attach(handle);
      cleanups.push(() => c.close());
      await c.install(fx.grant(c, `udp dst port ${20_000 + i}`).jws);
      c.onFrames((frames) => {
        for (const f of frames) {
          // Each task must only ever see its own port.
          expect((f[36] << 8) | f[37]).toBe(20_000 + i);
          counts[i]++;
        }
      });
      conns[i] = c;
    };
    // Attach in waves: the driver serves many handshakes per turn of its loop.
    for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => start(i + j)));
    expect(fx.core.sessions().length).toBe(N);
    expect(fx.core.grants.size).toBe(N);
    for (let i = 0; i < N; i += 100) {
      fx.peerSend(...Array.from({ length: 100 }, (_, j) => udp({ ...toDriver, sport: 9, dport: 20_000 + i + j })));
      await until(() => fx.core.counters.rxFrames >= i + 100, `frames up to ${i + 100}`, 30_000);
    }
    await until(() => counts.every((c) => c === 1), 'every task got its frame', 30_000);
    expect(fx.core.counters.rxUnclaimed).toBe(0);
  }, 180_000);

  it('survives truncated, garbage and oversized frames on the receive path', async () => {
    const fx = coreFixture();
    cleanups.push(() => fx.close());
    const t = await fx.task();
    await t.install(fx.grant(t, 'udp dst port 7').jws);
    await t.install(fx.grant(t, 'tcp[tcpflags] & tcp-syn != 0').jws);
    const got: Uint8Array[] = [];
    t.onFrames((fs) => got.push(...fs.map((f) => f.slice())));
    const good = udp({ ...toDriver, sport: 1, dport: 7 });
    const hostile = [
      // An IPv4 header claiming options longer than the frame, a truncated UDP header, random bytes.
      (() => {
        const f = good.slice(0, 60);
        f[14] = 0x4f;
        return f;
      })(),
      // Cut before the destination port (the sending MAC pads it to 60 bytes with zeros).
      good.slice(0, 36),
      ethernet(
        toDriver,
        0x0800,
        Uint8Array.from({ length: 46 }, (_, i) => (i * 37) & 0xff),
      ),
      ethernet(toDriver, 0x86dd, new Uint8Array(46).fill(0xff)),
      ethernet(toDriver, 0x8100, new Uint8Array(1500).fill(0x81)),
    ];
    fx.peerSend(...hostile, good);
    await until(() => got.length === 1, 'the good frame', 10_000);
    await until(() => fx.core.counters.rxFrames === hostile.length + 1, 'every frame judged');
    expect((got[0][36] << 8) | got[0][37]).toBe(7);
  });

  it('reclaims everything of a task process killed with kill -9', async () => {
    const cable = new Cable();
    const peer = createInThreadNic({ wire: cable.b, mac: Uint8Array.of(2, 0, 0, 0, 0, 2) });
    peer.driver.start();
    cleanups.push(() => peer.close());
    const issuer = generateSigningKey();
    const driver = await DriverService.start({
      id: 'drv-1',
      wire: cable.a,
      jwks: jwksDocument([issuer]),
      mac: Uint8Array.of(0x00, 0xe0, 0x4c, 0, 0, 1),
    });
    cleanups.push(() => driver.close());
    const child: ChildProcess = driver.startProcessTask(
      new URL('../support/process-task.ts', import.meta.url),
      'alice',
    );
    const messages: Record<string, unknown>[] = [];
    child.on('message', (m) => messages.push(m as Record<string, unknown>));
    await until(() => messages.some((m) => m.type === 'attached'), 'the process to attach', 30_000);
    const jkt = String(messages.find((m) => m.type === 'attached')!.jkt);
    const now = Math.floor(Date.now() / 1000);
    const claims: GrantClaims = {
      iss: 'x',
      sub: 'alice',
      aud: 'drv-1',
      iat: now,
      nbf: now,
      exp: now + 60,
      jti: 'proc-grant',
      cnf: { jkt },
      dir: 'rx',
      layer: 'task',
      bpf: b64urlEncode(encodeProgram(compileExpression('udp dst port 7'))),
      excl: true,
      rule: 'r',
    };
    child.send({ type: 'grant', grant: signGrant(claims, issuer) });
    await until(() => messages.some((m) => m.type === 'installed'), 'the grant installed', 15_000);
    for (let i = 0; i < 5; i++) peer.driver.transmit(udp({ ...toDriver, sport: 1, dport: 7 }));
    peer.driver.txCommit();
    await until(() => messages.some((m) => m.type === 'frames' && Number(m.frames) === 5), 'frames in the process');
    const session = driver.core.sessions()[0];
    child.kill('SIGKILL');
    await until(() => driver.core.sessions().length === 0, 'the dead task detached', 15_000);
    expect(driver.core.grants.size).toBe(0);
    const own = session.channel.ownership();
    expect(own.task + own.driverRx + own.driverTx).toBe(0);
    // Its exclusive claim is gone too: another task may now take the same filter.
    const again = await DriverConnection.attach(driver.attach('alice').handle);
    cleanups.push(() => again.close());
    await expect(
      again.install(signGrant({ ...claims, jti: 'again', cnf: { jkt: again.jkt } }, issuer)),
    ).resolves.toMatchObject({ jti: 'again' });
  }, 60_000);
});
