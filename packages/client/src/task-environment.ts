import { isMainThread, workerData } from 'node:worker_threads';
import type { ChannelHandle } from '@exonet/ipc';
import { type ConnectOptions, DriverConnection } from './driver-connection.ts';

/** What a task learns from the one who started it (its kernel: the driver service or `exonet up`). */
export interface TaskEnvironment {
  readonly handle: ChannelHandle;
  readonly principal: string;
  readonly driver: string;
  /** Anything else the starter passed (worker data), e.g. the permission server URL and a token. */
  readonly data: Readonly<Record<string, unknown>>;
}

/**
 * Reads the task's environment: in a worker thread, `workerData` (`{ handle, principal, driver, ... }`); in a
 * separate process, EXONET_CHANNEL (the shared-memory name), EXONET_PRINCIPAL and EXONET_DRIVER.
 * @throws Error naming what is missing
 */
export function taskEnvironment(): TaskEnvironment {
  if (!isMainThread && workerData && typeof workerData === 'object' && 'handle' in workerData) {
    const d = workerData as Record<string, unknown>;
    return {
      handle: d.handle as ChannelHandle,
      principal: String(d.principal ?? ''),
      driver: String(d.driver ?? ''),
      data: d,
    };
  }
  const name = process.env.EXONET_CHANNEL;
  if (!name) throw new Error('not started as an exonet task: no worker data and no EXONET_CHANNEL');
  return {
    handle: { transport: 'process', name },
    principal: process.env.EXONET_PRINCIPAL ?? '',
    driver: process.env.EXONET_DRIVER ?? '',
    data: {
      server: process.env.EXONET_SERVER,
      token: process.env.EXONET_TOKEN,
      ...JSON.parse(process.env.EXONET_TASK_DATA ?? '{}'),
    },
  };
}

/** Attaches to the driver the environment names and proves the task's key. */
export async function attachFromEnvironment(
  options: ConnectOptions = {},
): Promise<{ connection: DriverConnection; env: TaskEnvironment }> {
  const env = taskEnvironment();
  return { connection: await DriverConnection.attach(env.handle, options), env };
}
