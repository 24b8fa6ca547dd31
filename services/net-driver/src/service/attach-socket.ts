/**
 * The driver's attach socket: how a task process that the driver did not start (no launcher, no worker data)
 * attaches. The process connects to a Unix domain socket; the kernel tells the driver who connected
 * (SO_PEERCRED: pid, uid, gid, which the peer cannot forge); the driver names the principal from the uid,
 * creates the task's channel in POSIX shared memory owned by that uid, and answers with one line of JSON:
 *
 *   {"channel":"/exonet-...","principal":"alice","driver":"exonet-0"}
 *
 * or `{"error":{"code":"EXO_ERR_ATTACH_...","reason":"..."}}` before closing. The task then maps the channel
 * and speaks the task protocol (HELLO, PROVE, INSTALL) over it, as any task does. The connection stays open
 * for the task's life: when it closes (the process exited, kill -9 included) or the process is gone (pidfd),
 * the driver detaches the task and reclaims everything it held. Grants still decide what the task may send
 * and receive: the socket only names who it is.
 * @module
 */
import { chmodSync, chownSync, lstatSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type PeerCredentials, peerCredentials } from '@exonet/ipc';
import type { TaskSession } from '../core/task-session.ts';
import type { DriverService } from './driver-service.ts';

/** Why an attach was refused: the `code` of the error line. */
export type AttachRefusalCode =
  /** The connecting uid maps to no principal. */
  | 'EXO_ERR_ATTACH_UNKNOWN_USER'
  /** The uid already has its maximum number of attached tasks, or the driver is full. */
  | 'EXO_ERR_ATTACH_LIMIT'
  /** The kernel could not say who connected, or the channel could not be created. */
  | 'EXO_ERR_ATTACH_FAILED';

/** Options of {@link listenForTasks}. */
export interface AttachSocketOptions {
  /** Filesystem path of the socket (an existing socket file there is replaced). */
  readonly path: string;
  /**
   * Names the principal of a connecting process, or undefined to refuse it. Default: {@link passwdPrincipals}
   * (the account name of the uid in /etc/passwd, as the Unix user is the principal).
   */
  readonly principalOf?: (peer: PeerCredentials) => string | undefined;
  /** Tasks one uid may have attached at once (default 64): one user cannot exhaust the driver's slots. */
  readonly maxPerUid?: number;
  /** File mode of the socket (default 0o666: any local user may try; the principal decides the rest). */
  readonly mode?: number;
}

/** A listening attach socket. */
export interface AttachSocket {
  readonly path: string;
  /** Tasks attached through the socket and still connected. */
  readonly attached: number;
  /** Stops accepting; attached tasks stay attached until they leave (or the driver closes). */
  close(): Promise<void>;
}

/** Bytes a task may write on the socket (it has nothing to say there); more is a protocol error. */
const MAX_CHATTER = 4096;

/**
 * The default principal naming: uid to account name from /etc/passwd, read once per attach (accounts
 * change rarely, attaches are rare). An explicit map (`uid -> principal`) takes precedence.
 */
export function passwdPrincipals(
  map: ReadonlyMap<number, string> = new Map(),
  passwd = '/etc/passwd',
): (peer: PeerCredentials) => string | undefined {
  return (peer) => {
    const mapped = map.get(peer.uid);
    if (mapped !== undefined) return mapped;
    let text: string;
    try {
      text = readFileSync(passwd, 'utf8');
    } catch {
      return undefined;
    }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && f[2] === String(peer.uid) && /^[A-Za-z0-9._-]{1,64}$/.test(f[0]!)) return f[0];
    }
    return undefined;
  };
}

/** Parses `UID=PRINCIPAL` pairs (the command line's --attach-principal). */
export function parsePrincipalMap(pairs: readonly string[]): Map<number, string> {
  const map = new Map<number, string>();
  for (const p of pairs) {
    const m = /^(\d{1,10})=([A-Za-z0-9._:@-]{1,128})$/.exec(p);
    if (!m) throw new Error(`--attach-principal: expected UID=PRINCIPAL, got "${p}"`);
    map.set(Number(m[1]), m[2]!);
  }
  return map;
}

/** Starts the attach socket of a driver service. */
export async function listenForTasks(service: DriverService, options: AttachSocketOptions): Promise<AttachSocket> {
  const principalOf = options.principalOf ?? passwdPrincipals();
  const maxPerUid = options.maxPerUid ?? 64;
  const perUid = new Map<number, number>();
  const live = new Map<Socket, TaskSession>();

  const refuse = (socket: Socket, code: AttachRefusalCode, reason: string) => {
    socket.end(`${JSON.stringify({ error: { code, reason } })}\n`);
    socket.destroySoon();
  };

  const onConnection = (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    let peer: PeerCredentials;
    try {
      peer = peerCredentials(socket);
    } catch (err) {
      refuse(socket, 'EXO_ERR_ATTACH_FAILED', `cannot tell who connected: ${(err as Error).message}`);
      return;
    }
    const principal = principalOf(peer);
    if (principal === undefined || principal === '') {
      refuse(socket, 'EXO_ERR_ATTACH_UNKNOWN_USER', `uid ${peer.uid} is no principal of this driver`);
      return;
    }
    const count = perUid.get(peer.uid) ?? 0;
    if (count >= maxPerUid) {
      refuse(socket, 'EXO_ERR_ATTACH_LIMIT', `uid ${peer.uid} already has ${count} tasks attached`);
      return;
    }
    let session: TaskSession;
    let name: string;
    try {
      const r = service.attach(principal, 'process');
      if (r.handle.transport !== 'process') throw new Error('expected a process channel');
      session = r.session;
      name = r.handle.name;
      // The segment was created 0600 by the driver: hand it to the task's uid, so that user (and root) alone
      // may map it. /dev/shm is where Linux keeps POSIX shared memory names.
      if (typeof process.getuid === 'function' && peer.uid !== process.getuid()) {
        chownSync(`/dev/shm${name}`, peer.uid, peer.gid);
      }
    } catch (err) {
      refuse(socket, 'EXO_ERR_ATTACH_FAILED', `cannot attach: ${(err as Error).message}`);
      return;
    }
    perUid.set(peer.uid, count + 1);
    live.set(socket, session);
    const stopWatching = session.channel.watchProcess(peer.pid);
    let chatter = 0;
    socket.on('data', (chunk: Buffer) => {
      chatter += chunk.length;
      if (chatter > MAX_CHATTER) socket.destroy();
    });
    socket.on('close', () => {
      stopWatching();
      live.delete(socket);
      const n = (perUid.get(peer.uid) ?? 1) - 1;
      if (n > 0) perUid.set(peer.uid, n);
      else perUid.delete(peer.uid);
      // The slot may already belong to a newer task if this one left through its channel first.
      if (service.core.session(session.id) === session) {
        session.channel.taskExited(`the attach connection of pid ${peer.pid} closed`);
        service.core.detach(session.id);
      }
    });
    socket.write(`${JSON.stringify({ channel: name, principal, driver: service.id })}\n`);
  };

  // A task that leaves through its channel (or is disconnected for misbehaving) is detached by the core; its
  // connection is closed here on the next sweep so the uid's count and the descriptor are released.
  let closed = false;
  const sweep = setInterval(() => {
    for (const [socket, session] of live) {
      if (service.core.session(session.id) !== session) socket.destroy();
    }
    if (closed && live.size === 0) clearInterval(sweep);
  }, 500);
  sweep.unref();

  await removeStaleSocket(options.path);
  const server: Server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(options.path, options.mode ?? 0o666);
  return {
    path: options.path,
    get attached() {
      return live.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      // server.close() would wait for every attached task to leave: stop listening and let the sweep end.
      server.close();
      rmSync(options.path, { force: true });
    },
  };
}

/**
 * A socket file left by a driver that died is replaced; a socket someone still listens on, or anything else
 * at the path, is not ours to take.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new Error(`--attach-socket: ${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`--attach-socket: another process listens at ${path}`);
  rmSync(path, { force: true });
}
