/**
 * A task process started by nobody in particular (the test spawns it like a shell would): it attaches
 * through the driver's attach socket named in EXONET_ATTACH_SOCKET, reports who the driver says it is,
 * installs the grant its parent obtains for its key, then counts frames.
 */
import { attachViaSocket } from '@exonet/client';
import { serveParent } from './task-behaviour.ts';

try {
  const { connection, principal, driver } = await attachViaSocket(process.env.EXONET_ATTACH_SOCKET ?? '');
  serveParent(connection);
  process.send?.({ type: 'attached', principal, driver, publicKey: Array.from(connection.key.publicKey) });
} catch (err) {
  process.send?.({ type: 'failed', code: (err as { code?: string }).code, message: (err as Error).message });
}
