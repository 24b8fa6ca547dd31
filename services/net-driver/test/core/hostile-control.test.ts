/**
 * A hostile task on the control rings: random slots (any type, id, status, chunk flags and payload bytes),
 * well-formed messages with wrong bodies, and a flood of requests whose answers it never reads. The core
 * must answer or refuse each, never throw, keep its own memory bounded, and go on serving a well-behaved
 * task next to it.
 */
import { DriverConnection } from '@exonet/client';
import { attachChannel, CONTROL_PAYLOAD, type TaskChannel } from '@exonet/ipc';
import { MessageType, MORE } from '@exonet/protocol';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RESPONSE_BACKLOG } from '../../src/core/task-session.ts';
import { coreFixture, DRIVER_MAC, PEER_MAC, until } from '../support/core-fixture.ts';
import { udp } from '../support/frames.ts';

const toDriver = { srcMac: PEER_MAC, dstMac: DRIVER_MAC, src: '10.77.0.1', dst: '10.77.0.2' };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const enc = new TextEncoder();
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const messageType = fc.oneof(
  fc.constantFrom(...Object.values(MessageType)),
  fc.constantFrom(...Object.values(MessageType)).map((t) => (t | MORE) >>> 0),
  u32,
);
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => enc.encode(JSON.stringify(v))),
  fc
    .record({
      proof: fc.oneof(fc.string(), fc.jsonValue()),
      jwk: fc.oneof(fc.jsonValue(), fc.constant({ kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43) })),
      grant: fc.oneof(fc.string(), fc.constant('a.b.c'), fc.jsonValue()),
      replaces: fc.oneof(fc.string(), fc.jsonValue()),
      jti: fc.oneof(fc.string(), fc.jsonValue()),
    })
    .map((v) => enc.encode(JSON.stringify(v))),
);
const slot = fc.record({
  type: messageType,
  id: u32,
  status: u32,
  // A slot holds CONTROL_PAYLOAD bytes; longer bodies travel as MORE-flagged runs, which random types make.
  payload: fc.oneof(fc.uint8Array({ maxLength: CONTROL_PAYLOAD }), jsonBody).map((p) => p.subarray(0, CONTROL_PAYLOAD)),
});

/** A driver with a well-behaved task on UDP port 7000 and a raw hostile channel. */
async function setup() {
  const fx = coreFixture();
  cleanups.push(() => fx.close());
  const good = await fx.task();
  cleanups.push(() => good.close());
  await good.install(fx.grant(good, 'udp dst port 7000').jws);
  let received = 0;
  good.onFrames((frames) => {
    received += frames.length;
  });
  const { session, handle } = fx.core.attach({ principal: 'mallory' });
  const hostile: TaskChannel = attachChannel(handle);
  cleanups.push(async () => hostile.close());
  const stillServes = async () => {
    const before = received;
    fx.peerSend(udp({ ...toDriver, sport: 1, dport: 7000 }));
    await until(() => received > before, 'the well-behaved task to receive its frame');
  };
  return { fx, good, session, hostile, stillServes };
}

describe('a hostile task on the control rings', () => {
  it('gets an answer or a refusal for random slots; the core never throws and serves the other task', async () => {
    const { session, hostile, stillServes } = await setup();
    await fc.assert(
      fc.asyncProperty(fc.array(slot, { minLength: 1, maxLength: 40 }), async (slots) => {
        for (const s of slots) if (!hostile.request(s)) break;
        // Let the core's loop drain them, and read whatever it answered. Only pacing: slots that open a
        // message flagged MORE get no answer until the rest comes (the first run may send nothing else), so
        // waiting longer is no failure; what must hold is checked after the runs.
        await until(() => hostile.hasWork() || session.counters.controlRequests > 0, 'the core to read', 300).catch(
          () => {},
        );
        await new Promise((r) => setTimeout(r, 2));
        while (hostile.readResponse() !== undefined) {}
      }),
      { numRuns: 150 },
    );
    expect(session.counters.controlErrors).toBeGreaterThan(0);
    await stillServes();
  });

  it('stops reading the requests of a task that never reads its answers: bounded driver memory', async () => {
    const { session, hostile, stillServes } = await setup();
    const hello = { type: MessageType.HELLO, id: 1, status: 0, payload: enc.encode('{}') };
    let sent = 0;
    // Far more than the response ring and the backlog together hold: the task's request ring fills up.
    for (let round = 0; round < 200; round++) {
      while (hostile.request({ ...hello, id: sent + 1 })) sent++;
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(session.responseBacklog).toBeLessThanOrEqual(MAX_RESPONSE_BACKLOG);
    expect(hostile.request(hello)).toBe(false);
    await stillServes();
    // Once it reads, the conversation resumes: every request it got in is answered, in order.
    let answered = 0;
    await until(
      () => {
        while (hostile.readResponse() !== undefined) answered++;
        return answered === sent;
      },
      'every request to be answered',
      10_000,
    );
    expect(session.responseBacklog).toBe(0);
  });

  it('keeps the task usable after garbage: a proper handshake still works on a fresh connection', async () => {
    const { fx } = await setup();
    const conn = await DriverConnection.attach(fx.core.attach({ principal: 'alice' }).handle);
    cleanups.push(() => conn.close());
    await conn.install(fx.grant(conn, 'udp dst port 7001').jws);
    expect((await conn.status()).grants).toHaveLength(1);
  });
});
