/**
 * What the test task processes do once attached, however they got their channel: install the grants their
 * parent sends, report frames received, all over the process's IPC channel to the parent.
 */
import type { DriverConnection } from '@exonet/client';

export function serveParent(connection: DriverConnection): void {
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
}
