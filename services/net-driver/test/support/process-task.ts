/**
 * A task in a separate process (started by DriverService.startProcessTask): it attaches over POSIX shared
 * memory, tells its parent its key thumbprint, installs the grant the parent signs for it, then counts frames.
 */
import { attachFromEnvironment } from '@exonet/client';
import { serveParent } from './task-behaviour.ts';

const { connection } = await attachFromEnvironment();
serveParent(connection);
process.send?.({ type: 'attached', jkt: connection.jkt });
