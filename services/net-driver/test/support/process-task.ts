/**
 * A task in a separate process (started by DriverService.startProcessTask): it attaches over POSIX shared
 * memory, tells its parent its key thumbprint, installs the grant the parent signs for it, then counts frames.
 */
import { attachFromEnvironment } from '@exonet/client';

const { connection } = await attachFromEnvironment();
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
process.send?.({ type: 'attached', jkt: connection.jkt });
