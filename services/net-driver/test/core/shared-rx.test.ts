import { createChannelGroup, type DriverChannelGroup, RingHeader, RingId } from '@exonet/ipc';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, coreFixture, DRIVER_MAC, PEER_MAC, until } from '../support/core-fixture.ts';
import { udp } from '../support/frames.ts';

/**
 * Tasks of a channel group with a shared receive queue: the core puts every task's frames into the group's
 * one queue, tagged per task, and the group's poller hands each to its task. Each task must still get
 * exactly what its own filter accepts, in order, and nothing another group's tasks do may reach it.
 */
const toDriver = { srcMac: PEER_MAC, dstMac: DRIVER_MAC, src: '10.77.0.1', dst: '10.77.0.2' };

let fx: ReturnType<typeof coreFixture> | undefined;
const groups: DriverChannelGroup[] = [];
afterEach(async () => {
  await fx?.close();
  fx = undefined;
  for (const g of groups.splice(0)) g.close();
});

function numbered(dport: number, seq: number, size = 8): Uint8Array {
  const payload = new Uint8Array(size);
  new DataView(payload.buffer).setUint32(0, seq);
  payload[4] = dport & 0xff;
  return udp({ ...toDriver, sport: 1000, dport, payload });
}

const seqOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(42);

function sharedGroup(frameCount = 64): DriverChannelGroup {
  const g = createChannelGroup({ capacity: 8, sharedRx: { frameCount } });
  groups.push(g);
  return g;
}

describe('core: a channel group’s shared receive queue', () => {
  it('delivers each task its own frames, complete and in order, small and large, through both receive APIs', async () => {
    fx = coreFixture();
    const group = sharedGroup();
    const tasks = [await fx.task('alice', group), await fx.task('alice', group), await fx.task('alice', group)];
    for (let i = 0; i < tasks.length; i++) await tasks[i].install(fx.grant(tasks[i], `udp dst port ${7 + i}`).jws);
    const got: Uint8Array[][] = [collect(tasks[0]), collect(tasks[1]), []];
    // The third reads in place.
    tasks[2].onFrameAt((bytes, offset, length) => got[2].push(bytes.slice(offset, offset + length)));
    const per = 40;
    for (let s = 0; s < per; s += 10) {
      const frames: Uint8Array[] = [];
      // Every fifth datagram is 600 bytes: past the small-frame path, through the general one.
      for (let k = s; k < s + 10; k++) {
        for (let i = 0; i < tasks.length; i++) frames.push(numbered(7 + i, k, k % 5 === 4 ? 600 : 8));
      }
      fx.peerSend(...frames);
      await until(() => got.every((g) => g.length >= s + 10), `slice ${s}`);
    }
    for (let i = 0; i < tasks.length; i++) {
      expect(got[i].map(seqOf)).toEqual(Array.from({ length: per }, (_, k) => k));
      for (const [k, f] of got[i].entries()) {
        // The wire pads short frames to Ethernet's 60 bytes.
        const sent = numbered(7 + i, k, k % 5 === 4 ? 600 : 8);
        expect(f.length).toBe(Math.max(60, sent.length));
        expect(f.subarray(0, sent.length)).toEqual(sent);
      }
    }
    // Nothing went through the tasks' own receive rings; the counters still count per task.
    expect(fx.core.counters.rxCopies).toBe(per * tasks.length);
    for (const s of fx.core.sessions()) {
      expect(s.counters.rxDelivered).toBe(per);
      expect(s.channel.ownership().driverRx).toBe(0);
    }
    expect(group.sharedRx!.ownership().driverRx).toBe(0);
    // What a task asks for itself counts them too.
    for (const t of tasks) expect((await t.status()).counters.rxDelivered).toBe(per);
  });

  it('gives a frame several tasks accept to each of them once, next to tasks with queues of their own', async () => {
    fx = coreFixture();
    const group = sharedGroup();
    const a = await fx.task('alice', group);
    const b = await fx.task('alice', group);
    const own = await fx.task('alice');
    for (const t of [a, b, own]) await t.install(fx.grant(t, 'udp dst port 7').jws);
    const got = [collect(a), collect(b), collect(own)];
    fx.peerSend(...Array.from({ length: 12 }, (_, k) => numbered(7, k)));
    await until(() => got.every((g) => g.length >= 12), 'every task');
    await new Promise((r) => setTimeout(r, 30));
    for (const g of got) expect(g.map(seqOf)).toEqual(Array.from({ length: 12 }, (_, k) => k));
  });

  it('a task side that scribbles over the shared queue loses its group’s frames only; the core carries on', async () => {
    fx = coreFixture();
    const bad = sharedGroup();
    const good = sharedGroup();
    const victim = await fx.task('alice', bad);
    const g1 = await fx.task('alice', good);
    const alone = await fx.task('alice');
    await victim.install(fx.grant(victim, 'udp dst port 9').jws);
    await g1.install(fx.grant(g1, 'udp dst port 7').jws);
    await alone.install(fx.grant(alone, 'udp dst port 8').jws);
    const got = [collect(g1), collect(alone)];
    const q = bad.sharedRx!;
    const ring = q.layout.rings[RingId.RX_FREE];
    const slots = new Uint32Array(
      (q.handle as { buffer: SharedArrayBuffer }).buffer,
      ring.offset + RingHeader.SIZE,
      (ring.capacity * ring.slotSize) >> 2,
    );
    for (let i = 0; i < slots.length; i += 4) slots[i] = i % 8 === 0 ? 0xdeadbeef : 5;
    const frames: Uint8Array[] = [];
    for (let k = 0; k < 30; k++) frames.push(numbered(9, k), numbered(7, k), numbered(8, k));
    for (let r = 0; r < frames.length; r += 15) {
      fx.peerSend(...frames.slice(r, r + 15));
      await until(() => got.every((g) => g.length >= (r + 15) / 3), `slice ${r}`);
    }
    for (const g of got) expect(g.map(seqOf)).toEqual(Array.from({ length: 30 }, (_, k) => k));
    expect(q.violationCounts().badOffset).toBeGreaterThan(0);
    const victimSession = fx.core.sessions().find((s) => s.group === bad)!;
    expect(victimSession.counters.rxQueueFull).toBeGreaterThan(0);
  });
});
