import { TcpFlags, type TcpRepr } from '@exonet/wire';
import { describe, expect, it } from 'vitest';
import { NetError, type TcpSocket } from '../src/net/index.ts';
import { createSim, patternBytes } from './helpers/sim.ts';

const dec = new TextDecoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs a client and a server coroutine to completion inside the simulation. */
async function exchange(
  sim: ReturnType<typeof createSim>,
  server: (s: TcpSocket) => Promise<void>,
  client: (s: TcpSocket) => Promise<void>,
  port = 80,
): Promise<void> {
  const l = sim.b.tcpListen(port);
  let done = 0;
  let failure: unknown = null;
  const fin = (e?: unknown) => {
    if (e !== undefined) failure = e;
    done++;
  };
  l.accept()
    .then(server)
    .then(() => fin(), fin);
  sim.a
    .tcpConnect('10.0.0.2', port)
    .then(client)
    .then(() => fin(), fin);
  await sim.until(() => done === 2 || failure !== null);
  if (failure) throw failure;
  l.close();
}

describe('TCP between two stacks (deterministic simulation)', () => {
  it('handshake negotiates MSS and window scale, data flows, both sides close', async () => {
    const segs: TcpRepr[] = [];
    const sim = createSim({ a: { tcp: { trace: (d, s) => d === 'out' && segs.push(s) } } });
    let got = '';
    let reply = '';
    let clientSock: TcpSocket | null = null;
    await exchange(
      sim,
      async (s) => {
        for await (const c of s) got += dec.decode(c);
        await s.write('bye');
        await s.close();
      },
      async (s) => {
        clientSock = s;
        await s.write('hello');
        s.end();
        for await (const c of s) reply += dec.decode(c);
      },
    );
    expect(got).toBe('hello');
    expect(reply).toBe('bye');
    const syn = segs[0]!;
    expect(syn.flags).toBe(TcpFlags.SYN);
    expect(syn.options.mss).toBe(1460);
    expect(syn.options.windowScale).toBeGreaterThan(0);
    expect(syn.options.sackPermitted).toBe(true);
    // The client closed first, so it passes through TIME-WAIT (RFC 9293 section 3.6), then releases.
    await sim.until(() => clientSock!.state === 'TIME-WAIT' || clientSock!.state === 'CLOSED');
    await sim.until(() => sim.a.tcpConnectionCount === 0 && sim.b.tcpConnectionCount === 0);
    expect(clientSock!.state).toBe('CLOSED');
    sim.close();
  });

  for (const [name, faults] of [
    ['clean link', undefined],
    ['5% drops both ways', { seed: 3, tx: { dropRate: 0.05 }, rx: { dropRate: 0.05 } }],
    [
      'reordering and duplication',
      { seed: 11, tx: { reorderRate: 0.1, duplicateRate: 0.05 }, rx: { reorderRate: 0.1, duplicateRate: 0.05 } },
    ],
    [
      'drops, reordering and duplication',
      {
        seed: 5,
        tx: { dropRate: 0.03, reorderRate: 0.05, duplicateRate: 0.02 },
        rx: { dropRate: 0.03, reorderRate: 0.05 },
      },
    ],
  ] as const) {
    it(`moves 1 MB each way intact over a ${name}`, async () => {
      const sim = createSim(faults ? { faults } : {});
      const up = patternBytes(1 << 20, 1);
      const down = patternBytes(1 << 20, 2);
      let atServer: Uint8Array = new Uint8Array(0);
      let atClient: Uint8Array = new Uint8Array(0);
      await exchange(
        sim,
        async (s) => {
          const reading = s.readAll();
          await s.write(down);
          s.end();
          atServer = await reading;
        },
        async (s) => {
          const reading = s.readAll();
          await s.write(up);
          s.end();
          atClient = await reading;
        },
      );
      expect(Buffer.from(atServer).equals(Buffer.from(up))).toBe(true);
      expect(Buffer.from(atClient).equals(Buffer.from(down))).toBe(true);
      if (faults && 'dropRate' in faults.tx) expect(sim.faultA!.stats.dropped).toBeGreaterThan(10);
      if (faults && 'reorderRate' in faults.tx) expect(sim.faultA!.stats.reordered).toBeGreaterThan(10);
      sim.close();
    });
  }

  it('flow control: a reader that stops closes the window; the writer waits, probes, then finishes', async () => {
    let probes = 0;
    const sim = createSim({
      a: { tcp: { sendBuffer: 16384, trace: (d, s) => d === 'out' && s.payload.length === 1 && probes++ } },
      b: { tcp: { receiveBuffer: 8192 } },
    });
    const data = patternBytes(200_000, 9);
    let serverSock: TcpSocket | null = null;
    let written = false;
    const l = sim.b.tcpListen(80);
    l.accept().then((s) => {
      serverSock = s;
    });
    const client = await (async () => {
      const p = sim.a.tcpConnect('10.0.0.2', 80);
      let s: TcpSocket | null = null;
      p.then((x) => {
        s = x;
      });
      await sim.until(() => s !== null);
      return s!;
    })();
    client.write(data).then(() => {
      written = true;
      client.end();
    });
    // Nobody reads at the server: the 8 KiB window fills and stays shut; time passes (persist probes).
    await sim.until(() => serverSock !== null);
    const t0 = sim.clock.now();
    await sim.until(() => sim.clock.now() - t0 > 20_000);
    expect(written).toBe(false);
    expect(client.state).toBe('ESTABLISHED');
    expect(client.bufferedAmount).toBeGreaterThan(0);
    // Zero-window probes (RFC 9293 section 3.8.6.1), backing off: a handful in 20 s, not a flood.
    expect(probes).toBeGreaterThan(1);
    expect(probes).toBeLessThan(20);
    // Now read everything: the window reopens and the transfer completes.
    const got = await (async () => {
      let out: Uint8Array | null = null;
      serverSock!.readAll().then((x) => {
        out = x;
      });
      await sim.until(() => out !== null);
      return out!;
    })();
    expect(written).toBe(true);
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
    sim.close();
  });

  it('a SYN to a closed port is refused with RST', async () => {
    const sim = createSim();
    let err: unknown = null;
    sim.a.tcpConnect('10.0.0.2', 81).catch((e) => {
      err = e;
    });
    await sim.until(() => err !== null);
    expect(err).toBeInstanceOf(NetError);
    expect((err as NetError).code).toBe('EXO_ERR_NET_CONNECTION_REFUSED');
    sim.close();
  });

  it('abort sends RST and the peer sees EXO_ERR_NET_CONNECTION_RESET', async () => {
    const sim = createSim();
    let err: unknown = null;
    await exchange(
      sim,
      async (s) => {
        try {
          for await (const _ of s) {
          }
        } catch (e) {
          err = e;
        }
      },
      async (s) => {
        await s.write('partial');
        s.abort();
      },
    );
    expect((err as NetError).code).toBe('EXO_ERR_NET_CONNECTION_RESET');
    sim.close();
  });

  it('retransmits a lost SYN (RTO) and a lost FIN', async () => {
    // Frame 1 from A is the ARP request, 2 the SYN, then ACK, data, FIN...
    const segs: string[] = [];
    const sim = createSim({
      faults: {
        tx: {
          decide: (f, n) => {
            const isFin = f.length >= 54 && f[23] === 6 && (f[47] & TcpFlags.FIN) !== 0;
            if (n === 2 || (isFin && !segs.includes('fin-dropped'))) {
              if (isFin) segs.push('fin-dropped');
              return 'drop';
            }
            return 'pass';
          },
        },
      },
    });
    let got = '';
    await exchange(
      sim,
      async (s) => {
        for await (const c of s) got += dec.decode(c);
        await s.close();
      },
      async (s) => {
        await s.write('after a lost SYN');
        await s.close();
      },
    );
    expect(got).toBe('after a lost SYN');
    expect(segs).toContain('fin-dropped');
    expect(sim.faultA!.stats.dropped).toBe(2);
    sim.close();
  });

  it('an unanswered connect times out with EXO_ERR_NET_TIMEOUT', async () => {
    const sim = createSim({ faults: { tx: { dropRate: 1 } }, a: { tcp: { synRetries: 2 } } });
    // Let ARP through by learning B statically: B will learn A from the request it never sees, so use resolve.
    let err: unknown = null;
    sim.a.tcpConnect('10.0.0.2', 80).catch((e) => {
      err = e;
    });
    await sim.until(() => err !== null);
    expect((err as NetError).code).toBe('EXO_ERR_NET_TIMEOUT');
    sim.close();
  });

  it('sequence numbers wrap around 2^32 without harm', async () => {
    let n = 0;
    const sim = createSim({
      a: { random32: () => (n++ === 0 ? 1234 : 0xffffff00) },
      b: { random32: () => 0xfffffff0 },
    });
    const data = patternBytes(100_000, 4);
    let got: Uint8Array = new Uint8Array(0);
    await exchange(
      sim,
      async (s) => {
        got = await s.readAll();
        await s.close();
      },
      async (s) => {
        await s.write(data);
        await s.close();
      },
    );
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
    sim.close();
  });

  it('write resolves only as the send buffer drains (backpressure)', async () => {
    const sim = createSim({ a: { tcp: { sendBuffer: 4096 } }, b: { tcp: { receiveBuffer: 4096 } } });
    const chunks: Uint8Array[] = [];
    let maxBuffered = 0;
    await exchange(
      sim,
      async (s) => {
        for await (const c of s) chunks.push(c);
        await s.close();
      },
      async (s) => {
        for (let i = 0; i < 50; i++) {
          await s.write(patternBytes(1000, i));
          maxBuffered = Math.max(maxBuffered, s.bufferedAmount);
        }
        await s.close();
      },
    );
    expect(maxBuffered).toBeLessThanOrEqual(4096);
    expect(concat(chunks).length).toBe(50_000);
    sim.close();
  });

  it('runs over IPv6 too: MSS 1440, NDP resolution, 256 KB each way with drops', async () => {
    const segs: TcpRepr[] = [];
    const sim = createSim({
      faults: { seed: 9, tx: { dropRate: 0.03 }, rx: { dropRate: 0.03 } },
      a: { ipv6: { addresses: ['fd00::1'] }, tcp: { trace: (d, s) => d === 'out' && segs.push(s) } },
      b: { ipv6: { addresses: ['fd00::2'] } },
    });
    const up = patternBytes(256 * 1024, 5);
    const down = patternBytes(256 * 1024, 6);
    const l = sim.b.tcpListen(80);
    let atServer: Uint8Array | null = null;
    let atClient: Uint8Array | null = null;
    let remote = '';
    l.accept().then(async (s) => {
      remote = s.toString();
      const r = s.readAll();
      await s.write(down);
      s.end();
      atServer = await r;
    });
    sim.a.tcpConnect('fd00::2', 80).then(async (s) => {
      const r = s.readAll();
      await s.write(up);
      s.end();
      atClient = await r;
    });
    await sim.until(() => atServer !== null && atClient !== null);
    expect(segs[0]!.options.mss).toBe(1440);
    expect(remote).toMatch(/^\[fd00::2\]:80 > \[fd00::1\]:\d+$/);
    expect(Buffer.from(atServer!).equals(Buffer.from(up))).toBe(true);
    expect(Buffer.from(atClient!).equals(Buffer.from(down))).toBe(true);
    sim.close();
  });

  it('reports out-of-order data in SACK blocks, latest block first (RFC 2018)', async () => {
    const acks: TcpRepr[] = [];
    const sim = createSim({
      faults: { seed: 21, tx: { dropRate: 0.05 } },
      b: { tcp: { trace: (d, s) => d === 'out' && s.options.sackBlocks && acks.push(s) } },
    });
    const data = patternBytes(200_000, 8);
    let got: Uint8Array | null = null;
    await exchange(
      sim,
      async (s) => {
        got = await s.readAll();
        await s.close();
      },
      async (s) => {
        await s.write(data);
        await s.close();
      },
    );
    expect(Buffer.from(got!).equals(Buffer.from(data))).toBe(true);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) {
      expect(a.payload.length).toBe(0);
      expect(a.options.sackBlocks!.length).toBeLessThanOrEqual(4);
      // Every block lies above the cumulative ACK.
      for (const b of a.options.sackBlocks!) expect((b.left - a.ack) | 0).toBeGreaterThan(0);
    }
    sim.close();
  });

  it('keep-alive probes an idle peer, keeps a live one and aborts a vanished one', async () => {
    let blackhole = false;
    let probes = 0;
    const sim = createSim({
      faults: { rx: { decide: () => (blackhole ? 'drop' : 'pass') } },
      a: {
        tcp: {
          keepAliveMs: 10_000,
          keepAliveIntervalMs: 1000,
          keepAliveProbes: 3,
          trace: (d, s) => d === 'out' && s.payload.length === 0 && s.flags === TcpFlags.ACK && probes++,
        },
      },
    });
    const l = sim.b.tcpListen(80);
    l.accept();
    let sock: TcpSocket | null = null;
    sim.a.tcpConnect('10.0.0.2', 80).then((s) => {
      sock = s;
    });
    await sim.until(() => sock !== null);
    const t0 = sim.clock.now();
    probes = 0;
    await sim.until(() => sim.clock.now() - t0 >= 60_000);
    expect(sock!.state).toBe('ESTABLISHED');
    expect(probes).toBeGreaterThanOrEqual(5); // about one per 10 s of silence, each answered
    blackhole = true;
    const err = await (async () => {
      let e: unknown = null;
      sock!.closed.then((x) => {
        e = x;
      });
      await sim.until(() => e !== null);
      return e as { code: string };
    })();
    expect(err.code).toBe('EXO_ERR_NET_TIMEOUT');
    sim.close();
  });

  it('a link that refuses frames (full transmit ring) slows the sender without costing retransmission timeouts', async () => {
    let refused = 0;
    const sim = createSim({
      // Four frames per turn of the event loop, as a small ring drained between turns would take.
      wrapA: (inner) => {
        let credit = 4;
        let refill = false;
        return {
          mac: inner.mac,
          mtu: inner.mtu,
          onFrames: (h) => inner.onFrames(h),
          send(frame) {
            if (!refill) {
              refill = true;
              queueMicrotask(() => {
                credit = 4;
                refill = false;
              });
            }
            if (credit === 0) {
              refused++;
              return false;
            }
            credit--;
            return inner.send(frame);
          },
        };
      },
    });
    const data = patternBytes(1 << 20, 12);
    let got: Uint8Array | null = null;
    const t0 = sim.clock.now();
    await exchange(
      sim,
      async (s) => {
        got = await s.readAll();
        await s.close();
      },
      async (s) => {
        await s.write(data);
        await s.close();
      },
    );
    expect(Buffer.from(got!).equals(Buffer.from(data))).toBe(true);
    expect(refused).toBeGreaterThan(100);
    // Simulated time: retransmission timeouts (200 ms or more each) would add up to minutes here.
    expect(sim.clock.now() - t0).toBeLessThan(5000);
    sim.close();
  });

  it('resends holes reported by SACK blocks during fast recovery; with sack off it falls back to NewReno', async () => {
    const run = async (sack: boolean) => {
      const sim = createSim({
        faults: { seed: 4, tx: { dropRate: 0.04 } },
        a: { tcp: { sack } },
        b: { tcp: { sack } },
      });
      const data = patternBytes(1 << 20, 13);
      let got: Uint8Array | null = null;
      let counters = { timeouts: 0, fastRetransmits: 0, sackRetransmits: 0 };
      await exchange(
        sim,
        async (s) => {
          got = await s.readAll();
          await s.close();
        },
        async (s) => {
          await s.write(data);
          await s.drain();
          counters = s.counters;
          await s.close();
        },
      );
      expect(Buffer.from(got!).equals(Buffer.from(data))).toBe(true);
      sim.close();
      return counters;
    };
    const withSack = await run(true);
    const without = await run(false);
    expect(withSack.fastRetransmits).toBeGreaterThan(0);
    expect(withSack.sackRetransmits).toBeGreaterThan(0);
    expect(without.sackRetransmits).toBe(0);
  });

  it('a link that dies for good makes the connection time out, without spinning', async () => {
    let dead = false;
    let attempts = 0;
    const sim = createSim({
      // A long ARP lifetime, so frames keep reaching the (dead) link instead of an ARP queue.
      a: { tcp: { maxRetries: 3 }, arp: { ttlMs: 1e9 } },
      wrapA: (inner) => ({
        mac: inner.mac,
        mtu: inner.mtu,
        onFrames: (h) => inner.onFrames(h),
        send(frame) {
          if (!dead) return inner.send(frame);
          attempts++;
          return false;
        },
      }),
    });
    sim.b.tcpListen(80).accept();
    let sock: TcpSocket | null = null;
    sim.a.tcpConnect('10.0.0.2', 80).then((s) => {
      sock = s;
    });
    await sim.until(() => sock !== null);
    dead = true;
    const t0 = sim.clock.now();
    sock!.write(patternBytes(10_000, 1)).catch(() => {});
    let err: { code: string } | null = null;
    sock!.closed.then((e) => {
      err = e;
    });
    await sim.until(() => err !== null);
    expect(err!.code).toBe('EXO_ERR_NET_TIMEOUT');
    expect(attempts).toBeLessThan(1000);
    expect(sim.clock.now() - t0).toBeLessThan(30_000); // RTOs of 1, 2, 4 and 8 s, not the ARP lifetime
    sim.close();
  });
});
