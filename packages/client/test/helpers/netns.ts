import {
  createNetnsBridge,
  type ExecResult,
  freeUdpPort,
  type NetnsBridge,
} from '../../../../test/support/netns-bridge.ts';
import { openUdpTunnelLink, type UdpTunnelLink } from '../../src/net/index.ts';

export type { ExecResult };

/**
 * A Linux network namespace whose TAP device is bridged by socat to UDP datagrams on 127.0.0.1
 * (test/support/netns-bridge.ts), and our end of the tunnel as a FrameLink. Linux owns `peerIp` inside the
 * namespace.
 */
export interface NetnsTunnel extends NetnsBridge {
  readonly peerIp: string;
  readonly link: UdpTunnelLink;
}

/**
 * Creates the namespace, TAP and socat bridge; `mac` is our side's MAC; `ipv6` an address/prefix for Linux.
 * Retried a few times: the UDP port picked for socat can be taken by someone else before socat binds it.
 */
export async function createNetnsTunnel(mac: Uint8Array, opts: { ipv6?: string } = {}): Promise<NetnsTunnel> {
  const peerIp = '10.77.0.1';
  let last: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    const theirPort = await freeUdpPort();
    const link = await openUdpTunnelLink({ mac, localPort: 0, remoteHost: '127.0.0.1', remotePort: theirPort });
    try {
      const bridge = await createNetnsBridge({
        bridgePort: theirPort,
        exonetPort: link.localPort,
        address: `${peerIp}/24`,
        ipv6: opts.ipv6,
      });
      return {
        ...bridge,
        peerIp,
        link,
        async close() {
          link.close();
          await bridge.close();
        },
      };
    } catch (err) {
      link.close();
      last = err;
    }
  }
  throw last;
}
