import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { WireError } from '../errors.ts';
import { MIN_WIRE_FRAME, padShortFrame, type Wire, type WirePort } from './wire.ts';

/** Frames shorter than an Ethernet header or longer than the NIC's largest are dropped at the tunnel. */
const MIN_FRAME = 14;
const MAX_FRAME = 16379;

/**
 * A UDP datagram tunnel: one raw Ethernet frame (no FCS, no header) per datagram, both ways. This is the
 * format of `socat TUN,tun-type=tap,iff-no-pi UDP-DATAGRAM:...` (so a TAP device, and through it a Linux
 * network namespace, is the peer) and of QEMU's `-netdev dgram`.
 */
export class UdpWire implements Wire {
  readonly description: string;
  /** Datagrams dropped because they could not be Ethernet frames. */
  dropped = 0;
  private port: WirePort | undefined;
  private closed = false;
  private readonly pad = new Uint8Array(MIN_WIRE_FRAME);

  private constructor(
    private readonly socket: Socket,
    readonly localPort: number,
    readonly remoteHost: string,
    readonly remotePort: number,
  ) {
    this.description = `udp:${localPort}:${isIPv6(remoteHost) ? `[${remoteHost}]` : remoteHost}:${remotePort}`;
    socket.on('message', (msg) => {
      if (msg.length < MIN_FRAME || msg.length > MAX_FRAME) {
        this.dropped++;
        return;
      }
      this.port?.deliver(padShortFrame(msg, this.pad));
    });
    // A send to a closed port reports ECONNREFUSED on some systems; a tunnel keeps going.
    socket.on('error', () => {});
  }

  /**
   * Binds the local port, connects the socket to the far end and returns the wire. Connected, the socket
   * receives only the far end's datagrams: another host or process that sends to the port cannot put frames
   * on this cable.
   */
  static open(localPort: number, remoteHost: string, remotePort: number): Promise<UdpWire> {
    const v6 = isIPv6(remoteHost);
    const socket = createSocket({ type: v6 ? 'udp6' : 'udp4' });
    return new Promise((resolve, reject) => {
      let stage = `cannot bind UDP port ${localPort}`;
      const onError = (err: Error) => {
        socket.close();
        reject(new WireError('EXO_ERR_WIRE_IO', `${stage}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind(localPort, v6 ? '::' : '0.0.0.0', () => {
        stage = `cannot reach ${remoteHost}:${remotePort}`;
        // The callback gets the error when the far end's name does not resolve.
        socket.connect(remotePort, remoteHost, (err?: Error) => {
          if (err) return onError(err);
          socket.off('error', onError);
          resolve(new UdpWire(socket, socket.address().port, remoteHost, remotePort));
        });
      });
    });
  }

  attach(port: WirePort): void {
    this.port = port;
    // A tunnel has no carrier of its own: up while the socket is open.
    port.setCarrier(!this.closed);
  }

  transmit(data: Uint8Array, offset: number, length: number): void {
    if (this.closed) return;
    // The NIC's buffer is reused at once; the datagram leaves later.
    this.socket.send(Buffer.from(data.subarray(offset, offset + length)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.port?.setCarrier(false);
    this.port = undefined;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
