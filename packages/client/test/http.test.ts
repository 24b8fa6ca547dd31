import { describe, expect, it } from 'vitest';
import { serveHttp } from '../src/net/index.ts';
import { createSim } from './helpers/sim.ts';

const dec = new TextDecoder();

async function request(sim: ReturnType<typeof createSim>, raw: string): Promise<string> {
  let out: string | null = null;
  sim.a.tcpConnect('10.0.0.2', 80).then(async (s) => {
    await s.write(raw);
    s.end();
    out = dec.decode(await s.readAll());
  });
  await sim.until(() => out !== null);
  return out!;
}

describe('HTTP/1.1 helper', () => {
  it('serves GET and POST with Content-Length, keeps connections alive, answers bad requests with 400', async () => {
    const sim = createSim();
    const server = serveHttp(sim.b, {
      handler: (req) =>
        req.method === 'POST'
          ? { status: 201, body: `got ${req.body.length} bytes: ${dec.decode(req.body)}` }
          : { body: `path ${req.target} host ${req.headers.get('host')}` },
    });
    const one = await request(sim, 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(one).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(one).toContain('content-length: 14\r\n');
    expect(one.endsWith('\r\n\r\npath /a host x')).toBe(true);
    // Two pipelined requests on one connection, the second a POST.
    const two = await request(
      sim,
      'GET /b HTTP/1.1\r\nHost: y\r\n\r\nPOST /c HTTP/1.1\r\nHost: y\r\nContent-Length: 5\r\n\r\nhello',
    );
    expect(two.match(/HTTP\/1\.1 /g)?.length).toBe(2);
    expect(two).toContain('path /b host y');
    expect(two).toContain('HTTP/1.1 201 Created');
    expect(two).toContain('got 5 bytes: hello');
    const bad = await request(sim, 'NONSENSE\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(server.requests).toBe(4);
    server.close();
    sim.close();
  });

  it('resets a connection that stays idle past idleTimeoutMs', async () => {
    const sim = createSim();
    serveHttp(sim.b, { handler: () => ({ body: 'x' }), idleTimeoutMs: 5000 });
    let err: unknown = null;
    sim.a.tcpConnect('10.0.0.2', 80).then(async (s) => {
      await s.write('GET / HTTP/1.1\r\n'); // never finishes the header
      try {
        await s.readAll();
      } catch (e) {
        err = e;
      }
    });
    await sim.until(() => err !== null);
    expect((err as { code: string }).code).toBe('EXO_ERR_NET_CONNECTION_RESET');
    expect(sim.clock.now()).toBeGreaterThanOrEqual(6000);
    sim.close();
  });
});
