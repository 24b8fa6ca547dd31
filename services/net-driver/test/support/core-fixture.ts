import { compileExpression, encodeProgram, type Program } from '@exonet/bpf';
import { DriverConnection } from '@exonet/client';
import {
  b64urlEncode,
  createKeySet,
  type GrantClaims,
  generateSigningKey,
  jwksDocument,
  RevocationSet,
  signGrant,
} from '@exonet/grant';
import type { DriverChannelGroup } from '@exonet/ipc';
import { type CoreOptions, ExokernelCore } from '../../src/core/exokernel.ts';
import { createInThreadNic } from '../../src/nic/in-thread.ts';
import { Cable } from '../../src/wire/cable.ts';

export const DRIVER_MAC = '00:e0:4c:00:00:01';
export const PEER_MAC = '02:00:00:00:00:02';

/**
 * A driver (RTL8169 model + r8169 driver + exokernel core) joined by a cable to a peer NIC that plays the
 * network, with an in-process issuer signing grants, and a loop that polls the core as the service does.
 */
export function coreFixture(options: Partial<CoreOptions> = {}) {
  const cable = new Cable();
  const nic = createInThreadNic({ wire: cable.a, mac: Uint8Array.of(0x00, 0xe0, 0x4c, 0, 0, 1) });
  const peer = createInThreadNic({ wire: cable.b, mac: Uint8Array.of(2, 0, 0, 0, 0, 2) });
  nic.driver.start();
  peer.driver.start();
  peer.driver.setReceiveFilter({ promiscuous: true });
  const issuer = generateSigningKey();
  const ks = createKeySet(jwksDocument([issuer]));
  if (!ks.ok) throw new Error(ks.reason);
  const revocations = new RevocationSet();
  const core = new ExokernelCore({
    driverId: 'drv-1',
    device: nic.driver,
    keys: () => ks.keySet,
    revocations,
    ...options,
  });
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      core.poll();
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  let serial = 0;
  const now = () => Math.floor(Date.now() / 1000);

  /** Signs a grant for a connection's key. */
  function grant(
    conn: DriverConnection,
    filter: string | Program,
    claims: Partial<GrantClaims> = {},
  ): { jws: string; claims: GrantClaims } {
    const program = typeof filter === 'string' ? compileExpression(filter) : filter;
    const c: GrantClaims = {
      iss: 'exonet-test',
      sub: 'alice',
      aud: 'drv-1',
      iat: now() - 1,
      nbf: now() - 1,
      exp: now() + 300,
      jti: `g-${++serial}-${Math.random().toString(36).slice(2, 8)}`,
      cnf: { jkt: conn.jkt },
      dir: 'rx',
      layer: 'task',
      bpf: b64urlEncode(encodeProgram(program)),
      excl: false,
      rule: 'test',
      ...claims,
    };
    return { jws: signGrant(c, issuer), claims: c };
  }

  /** Attaches a task in this thread (in `group` when given). */
  async function task(principal = 'alice', group?: DriverChannelGroup): Promise<DriverConnection> {
    const { handle } = core.attach({ principal, group });
    return DriverConnection.attach(handle);
  }

  /** Frames the peer received since the last call. */
  function peerReceived(): Uint8Array[] {
    const got: Uint8Array[] = [];
    peer.driver.receive((f, len) => got.push(f.slice(0, len)), 256);
    return got;
  }

  /** The peer sends frames onto the wire towards the driver. */
  function peerSend(...frames: Uint8Array[]): void {
    for (const f of frames) if (!peer.driver.transmit(f)) throw new Error('peer TX ring full');
    peer.driver.txCommit();
  }

  async function close(): Promise<void> {
    stopped = true;
    await loop;
    core.close();
    await nic.close();
    await peer.close();
  }

  return { core, nic, peer, cable, issuer, revocations, grant, task, peerReceived, peerSend, close };
}

/** Resolves when `check` holds (polling), or rejects after `ms` with `what`. */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Collects what a connection receives. */
export function collect(conn: DriverConnection): Uint8Array[] {
  const got: Uint8Array[] = [];
  conn.onFrames((frames) => {
    for (const f of frames) got.push(f.slice());
  });
  return got;
}
