import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createStack,
  FaultInjectingLink,
  type HttpServer,
  NetError,
  type NetStack,
  serveHttp,
  type TcpSocket,
} from '../src/net/index.ts';
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
/** Segments from Linux advertising a zero window (not RSTs). */
let zeroWindows = 0;

beforeAll(async () => {
  tun = await createNetnsTunnel(MAC, { ipv6: 'fd00:77::1/64' });
  stack = createStack({
    link: tun.link,
    ipv4: '10.77.0.2/24',
    ipv6: { addresses: ['fd00:77::2'] },
    tcp: { trace: (dir, seg) => dir === 'in' && seg.window === 0 && !(seg.flags & 0x04) && zeroWindows++ },
  });
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

  it('ping -6 resolves us by neighbour discovery and gets ICMPv6 echo replies', async () => {
    const r = await tun.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '5', 'fd00:77::2']);
    const m = /(\d+) received/.exec(r.stdout);
    expect(Number(m?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(stack.stats.neighborAdvertisementsSent).toBeGreaterThanOrEqual(1);
    expect(stack.stats.icmpv6EchoAnswered).toBeGreaterThanOrEqual(1);
  });

  it('nc -u gets its datagram echoed by the UDP echo on port 7', async () => {
    let out = '';
    for (let attempt = 0; attempt < 3 && !out.includes('exonet-udp'); attempt++) {
      const r = await tun.exec('nc', ['-u', '-w', '5', '10.77.0.2', '7'], { input: 'exonet-udp\n' });
      out = r.stdout;
    }
    expect(out).toContain('exonet-udp');
  });

  it('nc -6 -u gets its datagram echoed over IPv6', async () => {
    let out = '';
    for (let attempt = 0; attempt < 3 && !out.includes('exonet-udp6'); attempt++) {
      const r = await tun.exec('nc', ['-6', '-u', '-w', '5', 'fd00:77::2', '7'], { input: 'exonet-udp6\n' });
      out = r.stdout;
    }
    expect(out).toContain('exonet-udp6');
  });

  it('curl -6 gets a page over TCP on IPv6', async () => {
    const r = await tun.exec('curl', ['-6', '-sS', '--max-time', '30', 'http://[fd00:77::2]/six']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from exonet, you asked for /six\n');
  });

  it('curl gets a page from our TCP/HTTP server', async () => {
    const r = await tun.exec('curl', ['-sS', '--max-time', '30', 'http://10.77.0.2/index.html']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from exonet, you asked for /index.html\n');
  });
});

/** Connects, retrying while the Linux listener is not up yet (RST: connection refused). */
async function connectWithRetry(s: NetStack, port: number): Promise<TcpSocket> {
  for (let i = 0; ; i++) {
    try {
      return await s.tcpConnect('10.77.0.1', port);
    } catch (err) {
      if (!(err instanceof NetError) || err.code !== 'EXO_ERR_NET_CONNECTION_REFUSED' || i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function collect(stream: NodeJS.ReadableStream | null): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    stream?.on('data', (d: Buffer) => parts.push(d));
    stream?.on('end', () => resolve(Buffer.concat(parts)));
  });
}

describe('active open to Linux listeners', () => {
  it('connects to nc -l and exchanges data both ways, FIN in both directions', async () => {
    const nc = tun.spawn('nc', ['-N', '-l', '5000']);
    const ncOut = collect(nc.stdout);
    nc.stdin?.end('pong from linux\n');
    const sock = await connectWithRetry(stack, 5000);
    await sock.write('ping from exonet\n');
    sock.end();
    const got = new TextDecoder().decode(await sock.readAll());
    expect(got).toBe('pong from linux\n');
    expect((await ncOut).toString()).toBe('ping from exonet\n');
    await sock.close(); // returns in TIME-WAIT: we closed first... or CLOSED when Linux did
    expect(['TIME-WAIT', 'CLOSED']).toContain(sock.state);
  });

  it('a connect to a closed Linux port is refused (RST from Linux)', async () => {
    await expect(stack.tcpConnect('10.77.0.1', 5999)).rejects.toMatchObject({ code: 'EXO_ERR_NET_CONNECTION_REFUSED' });
  });

  it('moves 1 MB each way through a Linux echo (socat EXEC:cat)', async () => {
    // -t 30: after our FIN, socat keeps relaying cat's output for up to 30 s instead of the default 0.5 s.
    tun.spawn('socat', ['-T', '60', '-t', '30', 'TCP-LISTEN:5001,reuseaddr', 'EXEC:cat']);
    const sock = await connectWithRetry(stack, 5001);
    const reading = sock.readAll();
    await sock.write(big);
    sock.end();
    const back = await reading;
    expect(back.length).toBe(big.length);
    expect(Buffer.from(back).equals(Buffer.from(big))).toBe(true);
  });
});

describe('flow control against a slow Linux reader', () => {
  it('respects a closed Linux window (probes it) and completes once the reader drains', async () => {
    // A 4 KiB receive buffer and a reader that starts after 2 s: Linux must close its window on us.
    tun.spawn('socat', [
      '-T',
      '60',
      '-t',
      '30',
      'TCP-LISTEN:5003,reuseaddr,rcvbuf=4096',
      'SYSTEM:sleep 2; exec sha256sum',
    ]);
    const sock = await connectWithRetry(stack, 5003);
    const before = zeroWindows;
    const reading = sock.readAll();
    await sock.write(big);
    sock.end();
    const hash = new TextDecoder().decode(await reading);
    const { createHash } = await import('node:crypto');
    expect(hash.split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
    expect(zeroWindows).toBeGreaterThan(before);
  }, 120_000);
});

describe('through a fault-injecting link (drops and reordering both ways) against Linux', () => {
  let ftun: NetnsTunnel;
  let fstack: NetStack;
  let fault: FaultInjectingLink;
  beforeAll(async () => {
    ftun = await createNetnsTunnel(MAC);
    fault = new FaultInjectingLink(ftun.link, {
      seed: 7,
      tx: { dropRate: 0.02, reorderRate: 0.02 },
      rx: { dropRate: 0.02, reorderRate: 0.02, duplicateRate: 0.01 },
    });
    fstack = createStack({ link: fault, ipv4: '10.77.0.2/24' });
    serveHttp(fstack, {
      port: 80,
      handler: (req) => (req.method === 'POST' ? { body: `received ${req.body.length} bytes\n` } : { body: big }),
    });
  });
  afterAll(async () => {
    fstack?.close();
    await ftun?.close();
  });

  it('curl downloads 1 MB intact (our retransmissions)', async () => {
    const r = await ftun.exec('sh', ['-c', 'curl -sS --max-time 120 --retry 3 http://10.77.0.2/big | sha256sum'], {
      timeoutMs: 150_000,
    });
    const { createHash } = await import('node:crypto');
    expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
    expect(fault.stats.dropped).toBeGreaterThan(0);
  }, 150_000);

  it('1 MB each way through a Linux echo survives the faults', async () => {
    ftun.spawn('socat', ['-T', '60', '-t', '30', 'TCP-LISTEN:5002,reuseaddr', 'EXEC:cat']);
    const sock = await connectWithRetry(fstack, 5002);
    const reading = sock.readAll();
    await sock.write(big);
    sock.end();
    const back = await reading;
    expect(Buffer.from(back).equals(Buffer.from(big))).toBe(true);
  }, 150_000);

  it('curl uploads 1 MB intact (our reassembly of out-of-order data)', async () => {
    const r = await ftun.exec(
      'sh',
      ['-c', 'head -c 1048576 /dev/zero | curl -sS --max-time 120 -H "Expect:" --data-binary @- http://10.77.0.2/up'],
      { timeoutMs: 150_000 },
    );
    expect(r.stdout).toBe('received 1048576 bytes\n');
  }, 150_000);
});
