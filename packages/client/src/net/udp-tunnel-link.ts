/**
 * A link over a UDP socket carrying one raw Ethernet frame per datagram: the tunnel socat and QEMU's
 * `-netdev dgram` speak. Used to reach a real Linux stack through a TAP device.
 */
import dgram from 'node:dgram';
import type { MacAddress } from '@exonet/wire';
import type { FrameHandler, FrameLink } from './frame-link.ts';

/** Options of {@link openUdpTunnelLink}. */
export interface UdpTunnelOptions {
  /** Our Ethernet address. */
  readonly mac: MacAddress;
  /** Local UDP port to bind (0 for any). */
  readonly localPort: number;
  readonly localHost?: string;
  readonly remoteHost: string;
  readonly remotePort: number;
  readonly mtu?: number;
}

/** A UDP tunnel link; `close()` closes the socket. */
export interface UdpTunnelLink extends FrameLink {
  /** The bound local port. */
  readonly localPort: number;
  close(): void;
}

/** Opens the socket and resolves once it is bound. */
export async function openUdpTunnelLink(opts: UdpTunnelOptions): Promise<UdpTunnelLink> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  let handler: FrameHandler | null = null;
  let closed = false;
  sock.on('message', (msg) => {
    // Frames shorter than an Ethernet header are noise on the tunnel: ignore them.
    if (msg.length >= 14) handler?.([new Uint8Array(msg.buffer, msg.byteOffset, msg.length)]);
  });
  sock.on('error', () => {
    // A send to a port nobody listens on yet yields ECONNREFUSED on Linux: a lost frame, nothing more.
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(opts.localPort, opts.localHost ?? '127.0.0.1', () => {
      sock.off('error', reject);
      resolve();
    });
  });
  const localPort = sock.address().port;
  return {
    mac: opts.mac,
    mtu: opts.mtu ?? 1500,
    localPort,
    send(frame) {
      if (closed) return false;
      sock.send(frame, opts.remotePort, opts.remoteHost);
      return true;
    },
    onFrames(h) {
      handler = h;
      return () => {
        if (handler === h) handler = null;
      };
    },
    close() {
      if (closed) return;
      closed = true;
      handler = null;
      sock.close();
    },
  };
}
