import { DriverRefusal } from '@exonet/client';
import { TxStatus } from '@exonet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, coreFixture, DRIVER_MAC, PEER_MAC, until } from '../support/core-fixture.ts';
import { ethernet, ipv4, udp } from '../support/frames.ts';

const toDriver = { srcMac: PEER_MAC, dstMac: DRIVER_MAC, src: '10.77.0.1', dst: '10.77.0.2' };
const fromTask = { srcMac: DRIVER_MAC, dstMac: PEER_MAC, src: '10.77.0.2', dst: '10.77.0.1' };

let fx: ReturnType<typeof coreFixture> | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

describe('exokernel core over the RTL8169 model', () => {
  it('delivers to each task only what its grants accept', async () => {
    fx = coreFixture();
    const a = await fx.task();
    const b = await fx.task();
    await a.install(fx.grant(a, 'udp dst port 7').jws);
    await b.install(fx.grant(b, 'udp dst port 9').jws);
    const gotA = collect(a);
    const gotB = collect(b);
    fx.peerSend(
      udp({ ...toDriver, sport: 1000, dport: 7 }),
      udp({ ...toDriver, sport: 1000, dport: 9 }),
      udp({ ...toDriver, sport: 1000, dport: 8 }),
      udp({ ...toDriver, sport: 1001, dport: 7 }),
    );
    await until(() => gotA.length === 2 && gotB.length === 1, 'deliveries');
    await until(() => fx!.core.counters.rxFrames === 4, 'all frames seen');
    expect(gotA.map((f) => (f[36] << 8) | f[37])).toEqual([7, 7]);
    expect(gotB.map((f) => (f[36] << 8) | f[37])).toEqual([9]);
    expect(fx.core.counters.rxUnclaimed).toBe(1);
  });

  it('delivers broadcast ARP to every task that asked for ARP, once each', async () => {
    fx = coreFixture();
    const tasks = [await fx.task(), await fx.task(), await fx.task()];
    for (const t of tasks.slice(0, 2)) {
      await t.install(fx.grant(t, 'arp').jws);
      // A second, overlapping grant of the same task must not make it receive twice.
      await t.install(fx.grant(t, 'ether broadcast').jws);
    }
    const got = tasks.map(collect);
    const arp = ethernet({ ...toDriver, dstMac: 'ff:ff:ff:ff:ff:ff' }, 0x0806, new Uint8Array(28));
    fx.peerSend(arp);
    await until(() => got[0].length === 1 && got[1].length === 1, 'ARP delivery');
    await until(() => fx!.core.counters.rxFrames === 1, 'frame seen');
    expect(got[2].length).toBe(0);
  });

  it('sends a task frame only when a TX grant accepts it, and says which layer refused', async () => {
    fx = coreFixture({});
    const t = await fx.task();
    await t.install(fx.grant(t, 'udp src port 7 and src host 10.77.0.2', { dir: 'tx' }).jws);
    const statuses: number[] = [];
    t.onTxStatus((s) => statuses.push(s));
    expect(t.send(udp({ ...fromTask, sport: 7, dport: 5000 }))).toBe(true);
    expect(t.send(udp({ ...fromTask, src: '10.77.0.66', sport: 7, dport: 5000 }))).toBe(true);
    expect(t.send(udp({ ...fromTask, sport: 8, dport: 5000 }))).toBe(true);
    await until(() => statuses.length === 3, 'three completions');
    expect(statuses).toEqual([TxStatus.SENT, TxStatus.DENIED_TASK, TxStatus.DENIED_TASK]);
    const wire: Uint8Array[] = [];
    await until(() => {
      wire.push(...fx!.peerReceived());
      return wire.length >= 1;
    }, 'the allowed frame on the wire');
    await new Promise((r) => setTimeout(r, 50));
    wire.push(...fx.peerReceived());
    expect(wire.length).toBe(1);
    expect((wire[0][34] << 8) | wire[0][35]).toBe(7);
  });

  it('lets the later fragments of a datagram follow the first one the task sent, and no one else’s', async () => {
    fx = coreFixture({});
    const t = await fx.task();
    const other = await fx.task();
    for (const c of [t, other]) await c.install(fx.grant(c, 'udp src port 7', { dir: 'tx' }).jws);
    const statuses: number[] = [];
    const otherStatuses: number[] = [];
    t.onTxStatus((s) => statuses.push(s));
    other.onTxStatus((s) => otherStatuses.push(s));
    // A 24-byte UDP datagram from port 7 in two fragments: the header and 8 bytes, then 16 bytes at offset 16.
    const header = Uint8Array.of(0, 7, 0x13, 0x88, 0, 32, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8);
    const frag = (ident: number, offset: number, more: boolean, l4: Uint8Array) =>
      ethernet(fromTask, 0x0800, ipv4(fromTask, 17, l4, { ident, fragmentOffset: offset, moreFragments: more }));
    const rest = new Uint8Array(16).fill(9);
    // The other task may not send a later fragment of t's datagram, before or after t sent the first.
    expect(other.send(frag(42, 16, false, rest))).toBe(true);
    await until(() => otherStatuses.length === 1, 'the other task’s completion');
    expect(t.send(frag(42, 0, true, header))).toBe(true);
    expect(t.send(frag(42, 16, false, rest))).toBe(true);
    expect(t.send(frag(43, 16, false, rest))).toBe(true); // no first fragment of datagram 43 was sent
    await until(() => statuses.length === 3, 'three completions');
    expect(other.send(frag(42, 16, false, rest))).toBe(true);
    await until(() => otherStatuses.length === 2, 'the other task’s second completion');
    expect(statuses).toEqual([TxStatus.SENT, TxStatus.SENT, TxStatus.DENIED_TASK]);
    expect(otherStatuses).toEqual([TxStatus.DENIED_TASK, TxStatus.DENIED_TASK]);
  });

  it('judges the NIC’s copy: a task rewriting its buffer after submitting cannot get an unfiltered frame out', async () => {
    let tamper: ((offset: number) => void) | undefined;
    fx = coreFixture({ afterTxCopy: (_s, offset) => tamper?.(offset) });
    const t = await fx.task();
    await t.install(fx.grant(t, 'udp src port 7', { dir: 'tx' }).jws);
    const statuses: number[] = [];
    t.onTxStatus((s) => statuses.push(s));
    const evil = udp({ ...fromTask, sport: 666, dport: 25 });
    // Between the copy and the verdict, the "task" overwrites its frame with a forbidden one.
    tamper = (offset) => {
      const session = fx!.core.sessions()[0];
      session.channel.pool.bytes.set(evil, offset);
    };
    t.send(udp({ ...fromTask, sport: 7, dport: 5000 }));
    await until(() => statuses.length === 1, 'completion');
    expect(statuses[0]).toBe(TxStatus.SENT);
    const wire: Uint8Array[] = [];
    await until(() => {
      wire.push(...fx!.peerReceived());
      return wire.length === 1;
    }, 'frame on the wire');
    // What left is what was judged: port 7, not the rewrite.
    expect((wire[0][34] << 8) | wire[0][35]).toBe(7);
  });

  it('refuses grants with the driver’s reason and counts them', async () => {
    fx = coreFixture();
    const t = await fx.task();
    const err = await t.install(fx.grant(t, 'udp', { aud: 'drv-other' }).jws).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverRefusal);
    expect((err as DriverRefusal).code).toBe('EXO_ERR_GRANT_AUDIENCE');
    const notMine = await t.install(fx.grant(t, 'udp', { sub: 'mallory' }).jws).catch((e: unknown) => e);
    expect((notMine as DriverRefusal).code).toBe('EXO_ERR_CORE_SUBJECT_MISMATCH');
    const other = await fx.task();
    const stolen = await other.install(fx.grant(t, 'udp').jws).catch((e: unknown) => e);
    expect((stolen as DriverRefusal).code).toBe('EXO_ERR_CORE_HOLDER_MISMATCH');
    expect(fx.core.grants.size).toBe(0);
    expect((await t.status()).counters.installsRefused).toBe(2);
  });

  it('gives a task the return traffic of a flow it opened, without an RX grant', async () => {
    fx = coreFixture();
    const t = await fx.task();
    await t.install(fx.grant(t, 'udp and src host 10.77.0.2', { dir: 'tx' }).jws);
    const got = collect(t);
    t.send(udp({ ...fromTask, sport: 40000, dport: 53 }));
    await until(() => fx!.core.conntrack.size === 1, 'flow tracked');
    fx.peerSend(udp({ ...toDriver, sport: 53, dport: 40000 }), udp({ ...toDriver, sport: 53, dport: 40001 }));
    await until(() => got.length === 1, 'the reply');
    await until(() => fx!.core.counters.rxFrames === 2, 'frames seen');
    expect(got.length).toBe(1);
    expect(fx.core.counters.rxViaConntrack).toBe(1);
  });

  it('drops every grant, flow and buffer of a task that goes away', async () => {
    fx = coreFixture();
    const t = await fx.task();
    await t.install(fx.grant(t, 'udp dst port 7').jws);
    await t.install(fx.grant(t, 'udp', { dir: 'tx' }).jws);
    t.send(udp({ ...fromTask, sport: 40000, dport: 53 }));
    await until(() => fx!.core.conntrack.size === 1, 'flow tracked');
    await t.close();
    await until(() => fx!.core.sessions().length === 0, 'detach');
    expect(fx.core.grants.size).toBe(0);
    expect(fx.core.conntrack.size).toBe(0);
  });
});
