/**
 * Attaching through a driver's attach socket: for a task process started by anyone (a shell, a service
 * manager), not by the driver. The driver learns who connected from the kernel, creates the task's channel
 * and answers with its shared-memory name; the connection then stays open as the sign that the task lives.
 * @module
 */
import { connect, type Socket } from 'node:net';
import { type ConnectOptions, DriverConnection, DriverRefusal } from './driver-connection.ts';

/** What the driver answered on its attach socket. */
export interface SocketAttachment {
  /** The task's channel, attached (HELLO and PROVE done). */
  readonly connection: DriverConnection;
  /** The principal the driver attached the task as (from its uid). */
  readonly principal: string;
  /** The driver's id (the `aud` its grants must carry). */
  readonly driver: string;
}

/** Longest answer line the driver may send. */
const MAX_LINE = 4096;

/**
 * Connects to a driver's attach socket, maps the channel it creates and attaches (HELLO, PROVE with the
 * task's key). Keep the process alive as long as the task runs: the driver detaches the task when the
 * connection closes.
 * @throws DriverRefusal with the driver's code (EXO_ERR_ATTACH_UNKNOWN_USER, EXO_ERR_ATTACH_LIMIT, ...), or
 *   EXO_ERR_CLIENT_ATTACH_SOCKET when the socket cannot be reached or answers nonsense
 */
export async function attachViaSocket(
  path: string,
  options: ConnectOptions & { readonly timeoutMs?: number } = {},
): Promise<SocketAttachment> {
  const socket = connect(path);
  let answer: { channel: string; principal: string; driver: string };
  try {
    answer = await readAnswer(socket, options.timeoutMs ?? 5000, path);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  // The channel, not this socket, keeps the process alive; the socket only has to stay open.
  socket.unref();
  socket.on('error', () => {});
  let connection: DriverConnection;
  try {
    connection = await DriverConnection.attach({ transport: 'process', name: answer.channel }, options);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  connection.onEvent((e) => {
    if (e.event === 'disconnect') socket.destroy();
  });
  return { connection, principal: answer.principal, driver: answer.driver };
}

function readAnswer(
  socket: Socket,
  timeoutMs: number,
  path: string,
): Promise<{ channel: string; principal: string; driver: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (reason: string) => {
      cleanup();
      reject(new DriverRefusal('EXO_ERR_CLIENT_ATTACH_SOCKET', `attach socket ${path}: ${reason}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (text.length > MAX_LINE) fail('answer too long');
        return;
      }
      cleanup();
      let v: unknown;
      try {
        v = JSON.parse(text.slice(0, nl));
      } catch {
        reject(new DriverRefusal('EXO_ERR_CLIENT_ATTACH_SOCKET', `attach socket ${path}: answer is not JSON`));
        return;
      }
      const o = (v ?? {}) as Record<string, unknown>;
      if (o.error && typeof o.error === 'object') {
        const e = o.error as Record<string, unknown>;
        reject(new DriverRefusal(String(e.code ?? 'EXO_ERR_CLIENT_ATTACH_SOCKET'), String(e.reason ?? 'refused')));
        return;
      }
      if (typeof o.channel !== 'string' || typeof o.principal !== 'string' || typeof o.driver !== 'string') {
        reject(new DriverRefusal('EXO_ERR_CLIENT_ATTACH_SOCKET', `attach socket ${path}: malformed answer`));
        return;
      }
      resolve({ channel: o.channel, principal: o.principal, driver: o.driver });
    };
    const onError = (err: Error) => fail(`cannot connect: ${err.message}`);
    const onClose = () => fail('closed without an answer');
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
