/**
 * A task process started by nobody in particular (the test spawns it like a shell would): it attaches
 * through the driver's attach socket named in EXONET_ATTACH_SOCKET, reports who the driver says it is,
 * installs the grant its parent obtains for its key, then counts frames.
 */
import { attachViaSocket } from '@exonet/client';

const path = process.env.EXONET_ATTACH_SOCKET ?? '';
try {
  const { connection, principal, driver } = await attachViaSocket(path);
  let frames = 0;
  connection.onFrames((batch) => {
    frames += batch.length;
    process.send?.({ type: 'frames', frames });
  });
  process.on('message', (m: { type: string; grant?: string }) => {
    if (m.type === 'grant' && m.grant) {
      connection.install(m.grant).then(
        (r) => process.send?.({ type: 'installed', jti: r.jti }),
        (err: Error) => process.send?.({ type: 'refused', message: err.message }),
      );
    }
  });
  process.send?.({ type: 'attached', principal, driver, publicKey: Array.from(connection.key.publicKey) });
} catch (err) {
  process.send?.({ type: 'failed', code: (err as { code?: string }).code, message: (err as Error).message });
}
