import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStack, type HttpServer, type NetStack, serveHttp } from '../src/net/index.ts';
import { createNetnsTunnel, type NetnsTunnel } from './helpers/netns.ts';
import { patternBytes } from './helpers/sim.ts';

/*
 * Against the real Linux stack: a network namespace whose TAP device socat bridges to UDP datagrams, and our
 * stack on the other end of the tunnel. Needs root (CI runs as root).
 */

const MAC = Uint8Array.of(0x02, 0xe0, 0x00, 0x00, 0x00, 0x02);
const big = patternBytes(1 << 20, 42);

let tun: NetnsTunnel;
let stack: NetStack;
let http: HttpServer;

beforeAll(async () => {
  tun = await createNetnsTunnel(MAC);
  stack = createStack({ link: tun.link, ipv4: '10.77.0.2/24' });
  // UDP echo on port 7 (RFC 862).
  const echo = stack.bindUdp(7);
  (async () => {
    for await (const d of echo) echo.reply(d, d.data);
  })();
  http = serveHttp(stack, {
    port: 80,
    handler: (req) => {
      if (req.target === '/big') return { body: big, headers: { 'content-type': 'application/octet-stream' } };
      if (req.method === 'POST') return { body: `received ${req.body.length} bytes\n` };
      return { body: `hello from exonet, you asked for ${req.target}\n`, headers: { 'content-type': 'text/plain' } };
    },
  });
});

afterAll(async () => {
  http?.close();
  stack?.close();
  await tun?.close();
});

describe('against the Linux stack in a network namespace', () => {
  it('ping gets replies from our ICMP echo responder', async () => {
    const r = await tun.exec('ping', ['-c', '3', '-i', '0.2', '-W', '5', '10.77.0.2']);
    const m = /(\d+) received/.exec(r.stdout);
    expect(Number(m?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(stack.stats.icmpEchoAnswered).toBeGreaterThanOrEqual(1);
  });

  it('nc -u gets its datagram echoed by the UDP echo on port 7', async () => {
    let out = '';
    for (let attempt = 0; attempt < 3 && !out.includes('exonet-udp'); attempt++) {
      const r = await tun.exec('nc', ['-u', '-w', '2', '10.77.0.2', '7'], { input: 'exonet-udp\n' });
      out = r.stdout;
    }
    expect(out).toContain('exonet-udp');
  });

  it('curl gets a page from our TCP/HTTP server', async () => {
    const r = await tun.exec('curl', ['-sS', '--max-time', '30', 'http://10.77.0.2/index.html']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from exonet, you asked for /index.html\n');
  });
});
