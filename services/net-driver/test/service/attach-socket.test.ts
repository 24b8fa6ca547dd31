import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachViaSocket } from '@exonet/client';
import { spawnProcess } from '@exonet/ipc';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { listenForTasks, parsePrincipalMap, passwdPrincipals } from '../../src/service/attach-socket.ts';
import { DRIVER_MAC, PEER_MAC, until } from '../support/core-fixture.ts';
import { udp } from '../support/frames.ts';
import { serviceOnCable } from '../support/service-fixture.ts';

const TASK = new URL('../support/socket-task.ts', import.meta.url);
const toDriver = { srcMac: PEER_MAC, dstMac: DRIVER_MAC, src: '10.77.0.1', dst: '10.77.0.2' };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const myUid = process.getuid?.() ?? 0;
const dir = mkdtempSync(join(tmpdir(), 'exonet-attach-'));
// Another uid must reach the sockets inside.
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function driverWithSocket(options: { maxPerUid?: number; principal?: string | undefined } = {}) {
  const { ps, driver, send } = await serviceOnCable(cleanups);
  const path = join(dir, `drv-${Math.random().toString(36).slice(2)}.sock`);
  const principal = 'principal' in options ? options.principal : 'alice';
  const socket = await listenForTasks(driver, {
    path,
    principalOf: () => principal,
    maxPerUid: options.maxPerUid,
  });
  cleanups.push(() => socket.close());
  return { ps, driver, socket, path, send };
}

interface TaskMessage {
  type: string;
  principal?: string;
  driver?: string;
  publicKey?: number[];
  frames?: number;
  code?: string;
  message?: string;
}

function startTask(path: string, uid?: number): { child: ChildProcess; next: (type: string) => Promise<TaskMessage> } {
  const child = spawnProcess(TASK, [], {
    env: { ...process.env, EXONET_ATTACH_SOCKET: path },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const seen: TaskMessage[] = [];
  child.on('message', (m: TaskMessage) => seen.push(m));
  const next = async (type: string) => {
    await until(() => seen.some((m) => m.type === type || m.type === 'failed'), `the task's "${type}"`, 15000);
    const m = seen.find((x) => x.type === type || x.type === 'failed')!;
    seen.splice(seen.indexOf(m), 1);
    if (m.type === 'failed') throw new Error(`task failed: ${m.code} ${m.message}`);
    return m;
  };
  return { child, next };
}

describe('the attach socket', () => {
  it('attaches a process nobody launched, as the principal of its uid; it receives its grant traffic; kill -9 reclaims everything', async () => {
    const { ps, driver, socket, path, send } = await driverWithSocket();
    const task = startTask(path);
    const hello = await task.next('attached');
    expect(hello.principal).toBe('alice');
    expect(hello.driver).toBe('drv-1');
    expect(socket.attached).toBe(1);
    const session = driver.core.sessions().find((s) => s.principal === 'alice');
    expect(session).toBeDefined();
    const g = await ps.requestGrant('alice', Uint8Array.from(hello.publicKey!), {
      dir: 'rx',
      filter: 'udp dst port 7',
      port: 7,
    });
    task.child.send({ type: 'grant', grant: g.grant });
    await task.next('installed');
    send(udp({ ...toDriver, sport: 5, dport: 7 }), udp({ ...toDriver, sport: 5, dport: 7 }));
    let frames = 0;
    while (frames < 2) frames = (await task.next('frames')).frames!;
    expect(frames).toBe(2);

    task.child.kill('SIGKILL');
    await once(task.child, 'exit');
    await until(() => driver.core.sessions().length === 0, 'the task detached after kill -9');
    await until(() => socket.attached === 0, 'the connection released');
    // Nothing of the task is left: no session, no grant.
    expect(driver.core.grants.size).toBe(0);
    expect(driver.status().tasks).toEqual([]);
  });

  it("hands the channel to the task's own uid when it is not the driver's (root only)", async () => {
    if (myUid !== 0) return; // CI runs as root; the channel's chown needs it.
    const { path } = await driverWithSocket();
    const task = startTask(path, 65534);
    const hello = await task.next('attached');
    expect(hello.principal).toBe('alice');
  });

  it('refuses a uid that names no principal, and one over its limit, with the reason', async () => {
    const unknown = await driverWithSocket({ principal: undefined });
    await expect(attachViaSocket(unknown.path)).rejects.toMatchObject({ code: 'EXO_ERR_ATTACH_UNKNOWN_USER' });
    expect(unknown.driver.core.sessions()).toHaveLength(0);

    const limited = await driverWithSocket({ maxPerUid: 1 });
    const first = await attachViaSocket(limited.path);
    cleanups.push(() => first.connection.close());
    await expect(attachViaSocket(limited.path)).rejects.toMatchObject({ code: 'EXO_ERR_ATTACH_LIMIT' });
    expect(limited.driver.core.sessions()).toHaveLength(1);
    // A task that leaves through its channel frees its place.
    await first.connection.close();
    await until(() => limited.socket.attached === 0, 'the first connection released');
    const again = await attachViaSocket(limited.path);
    cleanups.push(() => again.connection.close());
    expect(again.principal).toBe('alice');
  });

  it('disconnects a peer that floods the socket, and survives garbage', async () => {
    const { driver, socket, path } = await driverWithSocket();
    const raw = connect(path);
    await once(raw, 'connect');
    await until(() => socket.attached === 1, 'the raw peer attached');
    raw.on('error', () => {});
    raw.resume();
    raw.write(Buffer.alloc(10_000, 0xff));
    await once(raw, 'close');
    await until(() => socket.attached === 0 && driver.core.sessions().length === 0, 'the flooder detached');
    // The socket still serves well-behaved tasks.
    const ok = await attachViaSocket(path);
    cleanups.push(() => ok.connection.close());
    expect(driver.core.sessions()).toHaveLength(1);
  });

  it('replaces a stale socket file but never deletes anything else at its path', async () => {
    const { driver } = await driverWithSocket();
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await expect(listenForTasks(driver, { path: file })).rejects.toThrow(/not a socket/);
    expect(existsSync(file)).toBe(true);
    // A driver killed with -9 leaves its socket file behind: the next one takes the path over.
    const stale = join(dir, 'stale.sock');
    const holder = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`,
    ]);
    await once(holder.stdout!, 'data');
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    expect(existsSync(stale)).toBe(true);
    const taken = await listenForTasks(driver, { path: stale, principalOf: () => 'alice' });
    cleanups.push(() => taken.close());
    const task = await attachViaSocket(stale);
    cleanups.push(() => task.connection.close());
    expect(task.principal).toBe('alice');
  });
});

describe('principal naming', () => {
  it('maps uids through an explicit map first, then /etc/passwd', () => {
    const passwd = join(dir, 'passwd');
    writeFileSync(
      passwd,
      'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbad name:x:7:7::/:/\n',
    );
    const of = passwdPrincipals(parsePrincipalMap(['0=operator']), passwd);
    expect(of({ pid: 1, uid: 0, gid: 0 })).toBe('operator');
    expect(of({ pid: 1, uid: 1000, gid: 1000 })).toBe('alice');
    expect(of({ pid: 1, uid: 7, gid: 7 })).toBeUndefined();
    expect(of({ pid: 1, uid: 4242, gid: 4242 })).toBeUndefined();
    expect(() => parsePrincipalMap(['alice'])).toThrow(/UID=PRINCIPAL/);
    expect(() => parsePrincipalMap(['1=a b'])).toThrow(/UID=PRINCIPAL/);
  });
});
