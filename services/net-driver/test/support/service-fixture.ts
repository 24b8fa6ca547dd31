/**
 * A driver service on a cable to a peer NIC, getting its grants and revocations from a real permission
 * server: the set-up the service's tests share.
 */
import { createInThreadNic } from '../../src/nic/in-thread.ts';
import { DriverService } from '../../src/service/driver-service.ts';
import { Cable } from '../../src/wire/cable.ts';
import { until } from './core-fixture.ts';
import { policyServer } from './policy.ts';

/** Registers what the test must undo, last first. */
export type Cleanups = (() => Promise<void> | void)[];

export async function serviceOnCable(
  cleanups: Cleanups,
  options: { stalenessBoundMs?: number; listValiditySec?: number } = {},
) {
  const ps = await policyServer({ listValiditySec: options.listValiditySec });
  cleanups.push(() => ps.close());
  const cable = new Cable();
  const peer = createInThreadNic({ wire: cable.b, mac: Uint8Array.of(2, 0, 0, 0, 0, 2) });
  peer.driver.start();
  cleanups.push(() => peer.close());
  const driver = await DriverService.start({
    id: 'drv-1',
    wire: cable.a,
    servers: [ps.url],
    issuer: 'exonet-test',
    mac: Uint8Array.of(0x00, 0xe0, 0x4c, 0, 0, 1),
    stalenessBoundMs: options.stalenessBoundMs,
  });
  cleanups.push(() => driver.close());
  await until(() => driver.follower!.isFresh(), 'the revocation feed');
  /** Frames from the peer to the driver, one doorbell for all. */
  const send = (...frames: Uint8Array[]) => {
    for (const f of frames) peer.driver.transmit(f);
    peer.driver.txCommit();
  };
  return { ps, driver, peer, send };
}
