import { RingHeader, RingId } from '@exonet/ipc';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, coreFixture, DRIVER_MAC, PEER_MAC, until } from '../support/core-fixture.ts';
import { udp } from '../support/frames.ts';

/**
 * Two-phase delivery: with staging on (here from the first task, rxStageMinTasks 0), small frames wait in
 * the core's arena and reach each task's queue at the publish. Nothing a task does to its own rings may
 * then reach another task's frames.
 */
const toDriver = { srcMac: PEER_MAC, dstMac: DRIVER_MAC, src: '10.77.0.1', dst: '10.77.0.2' };

let fx: ReturnType<typeof coreFixture> | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** A datagram to `dport` whose payload carries `seq` (so order and content can be checked). */
function numbered(dport: number, seq: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, seq);
  payload[4] = dport & 0xff;
  return udp({ ...toDriver, sport: 1000, dport, payload });
}

const seqOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(42);

describe('core: staged (two-phase) delivery of small frames', () => {
  for (const stage of [0, Number.POSITIVE_INFINITY]) {
    it(`delivers interleaved frames to each task complete and in order (staging ${stage === 0 ? 'on' : 'off'})`, async () => {
      fx = coreFixture({ rxStageMinTasks: stage });
      const tasks = [await fx.task(), await fx.task(), await fx.task()];
      for (let i = 0; i < tasks.length; i++) await tasks[i].install(fx.grant(tasks[i], `udp dst port ${7 + i}`).jws);
      const got = tasks.map(collect);
      const per = 40;
      // In slices the peer's TX ring takes, round-robin over the three ports as the benchmark sends.
      for (let s = 0; s < per; s += 10) {
        const frames: Uint8Array[] = [];
        for (let k = s; k < s + 10; k++) for (let i = 0; i < tasks.length; i++) frames.push(numbered(7 + i, k));
        fx.peerSend(...frames);
        await until(() => got.every((g) => g.length >= s + 10), `slice ${s}`);
      }
      for (let i = 0; i < tasks.length; i++) {
        expect(got[i].map(seqOf)).toEqual(Array.from({ length: per }, (_, k) => k));
        for (const f of got[i]) expect(((f[36] << 8) | f[37]) === 7 + i && f[46] === 7 + i).toBe(true);
      }
      expect(fx.core.counters.rxCopies).toBe(per * tasks.length);
      for (const t of fx.core.sessions()) expect(t.counters.rxDelivered).toBe(per);
    });
  }

  it('keeps a task’s order when frames too large to stage come between staged ones', async () => {
    fx = coreFixture({ rxStageMinTasks: 0 });
    const a = await fx.task();
    const b = await fx.task();
    await a.install(fx.grant(a, 'udp dst port 7').jws);
    await b.install(fx.grant(b, 'udp dst port 9').jws);
    const got = collect(a);
    const frames: Uint8Array[] = [];
    for (let k = 0; k < 24; k++) {
      // Every third datagram to port 7 is 400 bytes: delivered directly, after the task's staged ones.
      const payload = new Uint8Array(k % 3 === 2 ? 400 : 8);
      new DataView(payload.buffer).setUint32(0, k);
      frames.push(udp({ ...toDriver, sport: 1000, dport: 7, payload }), numbered(9, k));
    }
    for (let r = 0; r < frames.length; r += 12) {
      fx.peerSend(...frames.slice(r, r + 12));
      await until(() => got.length >= (r + 12) / 2, `slice ${r}`);
    }
    expect(got.map(seqOf)).toEqual(Array.from({ length: 24 }, (_, k) => k));
  });

  it('a task that scribbles garbage over its offered frames loses only its own frames', async () => {
    fx = coreFixture({ rxStageMinTasks: 0 });
    const good = await fx.task();
    const bad = await fx.task();
    await good.install(fx.grant(good, 'udp dst port 7').jws);
    await bad.install(fx.grant(bad, 'udp dst port 9').jws);
    const got = collect(good);
    const badSession = fx.core.sessions().find((s) => s.id === 1)!;
    const ch = badSession.channel;
    const ring = ch.layout.rings[RingId.RX_FREE];
    const slots = new Uint32Array(
      (ch.handle as { buffer: SharedArrayBuffer }).buffer,
      ring.offset + RingHeader.SIZE,
      (ring.capacity * ring.slotSize) >> 2,
    );
    // Offsets outside the pool, not at a frame start, and the good task's own frame offsets: all refused.
    for (let i = 0; i < slots.length; i += 4) slots[i] = i % 12 === 0 ? 0xdeadbeef : i % 12 === 4 ? 3 : 1 << 30;
    const frames: Uint8Array[] = [];
    for (let k = 0; k < 12; k++) frames.push(numbered(7, k), numbered(9, k));
    fx.peerSend(...frames);
    await until(() => got.length === 12, 'the good task’s frames');
    expect(got.map(seqOf)).toEqual(Array.from({ length: 12 }, (_, k) => k));
    const v = ch.violationCounts();
    expect(v.badOffset).toBeGreaterThan(0);
    // Neither channel's ownership table lost or duplicated a frame.
    for (const s of fx.core.sessions()) {
      const o = s.channel.ownership();
      expect(o.task + o.driverRx + o.driverTx + o.reclaimed).toBe(s.channel.layout.frameCount);
    }
  });

  it('counts as queue full what a task without empty frames could not take, and serves the others', async () => {
    fx = coreFixture({ rxStageMinTasks: 0 });
    const slow = await fx.task();
    const fast = await fx.task();
    await slow.install(fx.grant(slow, 'udp dst port 9').jws);
    await fast.install(fx.grant(fast, 'udp dst port 7').jws);
    const got = collect(fast);
    // The slow task never reads: once its offered frames are used up, the rest of its frames are dropped.
    const frames: Uint8Array[] = [];
    for (let k = 0; k < 20; k++) frames.push(numbered(7, k), numbered(9, k));
    for (let r = 0; r < 20; r += 5) {
      fx.peerSend(...frames.slice(r * 2, r * 2 + 10));
      await until(() => got.length >= r + 5, `slice ${r}`);
    }
    expect(got.map(seqOf)).toEqual(Array.from({ length: 20 }, (_, k) => k));
    const s = fx.core.sessions().find((x) => x.id === 0)!;
    await until(() => s.counters.rxDelivered + s.counters.rxQueueFull === 20, 'the slow task’s frames accounted');
  });
});
