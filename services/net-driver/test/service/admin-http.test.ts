import { DriverConnection } from '@exonet/client';
import { afterEach, describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/commands/driver.ts';
import { startAdminHttp } from '../../src/service/admin-http.ts';
import { DriverService } from '../../src/service/driver-service.ts';
import { policyServer } from '../support/policy.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('driver operator endpoint', () => {
  it('shows tasks, grants with expiry and counters, as JSON, text and Prometheus metrics', async () => {
    const ps = await policyServer();
    cleanups.push(() => ps.close());
    const driver = await DriverService.start({ id: 'drv-1', wire: 'null', servers: [ps.url], issuer: 'exonet-test' });
    cleanups.push(() => driver.close());
    const admin = await startAdminHttp(driver, '127.0.0.1:0');
    cleanups.push(() => admin.close());
    const task = await DriverConnection.attach(driver.attach('alice').handle);
    cleanups.push(() => task.close());
    const g = await ps.requestGrant('alice', task.key.publicKey, {
      dir: 'rx',
      filter: 'udp dst port 5353',
      port: 5353,
    });
    await task.install(g.grant);

    const status = (await (await fetch(`${admin.url}/status`)).json()) as ReturnType<DriverService['status']>;
    expect(status.id).toBe('drv-1');
    expect(status.tasks).toHaveLength(1);
    expect(status.tasks[0].grants[0]).toMatchObject({ jti: g.id, dir: 'rx', layer: 'task', rule: 'udp-in' });
    const text = formatStatus(status);
    expect(text).toContain(g.id);
    expect(text).toMatch(/expires in \d+ s/);
    const metrics = await (await fetch(`${admin.url}/metrics`)).text();
    expect(metrics).toContain('exonet_driver_grants{dir="rx",layer="task"} 1');
    expect(metrics).toMatch(/exonet_driver_task_frames\{task="\d+",principal="alice",counter="rxDelivered"\} 0/);
    expect((await fetch(`${admin.url}/healthz`)).ok).toBe(true);
  });

  it('refuses a malformed listen address', async () => {
    await expect(startAdminHttp({} as DriverService, 'nonsense')).rejects.toThrow(/HOST:PORT/);
  });
});
