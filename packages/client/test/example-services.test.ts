import { describe, expect, it } from 'vitest';
import { startExampleServices } from '../src/net/index.ts';
import { createSim } from './helpers/sim.ts';

describe('example services', () => {
  it('echo UDP datagrams on port 7 and serve the HTTP page on port 80', async () => {
    const sim = createSim();
    const services = startExampleServices(sim.b);
    const client = sim.a.bindUdp(40000);
    client.send(new TextEncoder().encode('echo me'), '10.0.0.2', 7);
    let echoed: string | null = null;
    client.receive().then((d) => {
      echoed = d ? `${new TextDecoder().decode(d.data)} from ${d.srcText}:${d.srcPort}` : 'none';
    });
    await sim.until(() => echoed !== null);
    expect(echoed).toBe('echo me from 10.0.0.2:7');
    expect(services.echoed).toBe(1);
    let page: string | null = null;
    sim.a.tcpConnect('10.0.0.2', 80).then(async (s) => {
      await s.write('GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      page = new TextDecoder().decode(await s.readAll());
    });
    await sim.until(() => page !== null);
    expect(page).toContain('hello from the exonet task at 10.0.0.2: GET /status');
    services.close();
    sim.close();
  });

  it('echo UDP over IPv6 after resolving the neighbour by NDP', async () => {
    const sim = createSim({ a: { ipv6: { addresses: ['fd00::1'] } }, b: { ipv6: { addresses: ['fd00::2'] } } });
    const services = startExampleServices(sim.b, { httpPort: false });
    const client = sim.a.bindUdp(40000);
    expect(client.send(new TextEncoder().encode('six'), 'fd00::2', 7)).toBe(true);
    let echoed: string | null = null;
    client.receive().then((d) => {
      echoed = d ? `${new TextDecoder().decode(d.data)} from [${d.srcText}]:${d.srcPort} v${d.family}` : 'none';
    });
    await sim.until(() => echoed !== null);
    expect(echoed).toBe('six from [fd00::2]:7 v6');
    expect(sim.b.stats.neighborAdvertisementsSent).toBeGreaterThanOrEqual(1);
    services.close();
    sim.close();
  });
});
