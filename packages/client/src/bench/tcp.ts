// `exonet bench tcp`: bulk TCP throughput between two stacks over an in-memory link (real clock), one way,
// so the figure is the cost of the stack itself: segmentation, checksums, ACK clocking and reassembly.
import { createLinkPair } from '../net/link-pair.ts';
import { createStack } from '../net/stack.ts';

/** Runs the benchmark; returns megabytes per second and the segment count. */
export async function run({ quick, log }: { quick: boolean; log: (line: string) => void }) {
  const bytes = quick ? 256 * 1024 : 64 * 1024 * 1024;
  const { a, b } = createLinkPair();
  const client = createStack({ link: a, ipv4: '10.0.0.1/24' });
  const server = createStack({ link: b, ipv4: '10.0.0.2/24' });
  try {
    const listener = server.tcpListen(9);
    const received = (async () => {
      const s = await listener.accept();
      let n = 0;
      for await (const c of s) n += c.length;
      return n;
    })();
    const chunk = new Uint8Array(64 * 1024).fill(0x5a);
    const t0 = performance.now();
    const sock = await client.tcpConnect('10.0.0.2', 9);
    for (let sent = 0; sent < bytes; sent += chunk.length) await sock.write(chunk);
    sock.end();
    const got = await received;
    const ms = performance.now() - t0;
    if (got !== bytes) throw new Error(`tcp bench: received ${got} of ${bytes} bytes`);
    const result = {
      bytes,
      seconds: Number((ms / 1000).toFixed(3)),
      mbytes_per_s: Number((bytes / 1e6 / (ms / 1000)).toFixed(1)),
      frames: client.stats.txFrames + server.stats.txFrames,
    };
    log(`tcp: ${result.mbytes_per_s} MB/s over an in-memory link (${result.frames} frames)`);
    return result;
  } finally {
    client.close();
    server.close();
  }
}
