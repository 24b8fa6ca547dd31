import type { DriverConnection } from './driver-connection.ts';
import { GrantClient, type GrantClientOptions, type HeldGrant } from './grant-client.ts';
import { createStack, type NetStack, type StackOptions } from './net/stack.ts';
import type { TcpListener, TcpListenOptions } from './net/tcp/tcp-listener.ts';
import type { BindUdpOptions, UdpEndpoint } from './net/udp-endpoint.ts';

/** Options of {@link TaskNet.open}. */
export interface TaskNetOptions extends Omit<StackOptions, 'link'> {
  /** The task's connection to its driver. */
  readonly connection: DriverConnection;
  /** Where grants come from: the permission server, the task's user's token and the driver id. */
  readonly server: string;
  readonly token: string;
  readonly driver: string;
  /** Renewal settings and error reporting of the grants (see {@link GrantClient}). */
  readonly grants?: Pick<GrantClientOptions, 'renewAt' | 'onRenewError'>;
}

/**
 * Sockets without sockets: a task's network stack whose `bindUdp` and `tcpListen` first obtain, install and
 * keep renewed the grants the port needs (receive to the port, send from it), then open the endpoint. Closing
 * the endpoint releases its grants. Everything else is the plain stack (`net.stack`).
 */
export class TaskNet {
  readonly stack: NetStack;
  readonly grants: GrantClient;

  private constructor(stack: NetStack, grants: GrantClient) {
    this.stack = stack;
    this.grants = grants;
  }

  static open(options: TaskNetOptions): TaskNet {
    const { connection, server, token, driver, grants, ...stackOptions } = options;
    const stack = createStack({ ...stackOptions, link: connection });
    const client = new GrantClient({ server, token, driver, connection, ...grants });
    return new TaskNet(stack, client);
  }

  /**
   * Obtains `udp dst port P` (receive) and `udp src port P` (send) grants, then binds the port.
   * @throws GrantRequestError when the policy refuses (the reason is in the message), DriverRefusal when the
   *   driver refuses the grant
   */
  async bindUdp(port: number, options: BindUdpOptions & { exclusive?: boolean } = {}): Promise<UdpEndpoint> {
    const held = await this.#portGrants('udp', port, options.exclusive);
    const endpoint = this.stack.bindUdp(port, options);
    const close = endpoint.close.bind(endpoint);
    endpoint.close = () => {
      close();
      for (const g of held) void this.grants.release(g);
    };
    return endpoint;
  }

  /** Obtains `tcp dst port P` and `tcp src port P` grants, then listens on the port. */
  async tcpListen(port: number, options: TcpListenOptions & { exclusive?: boolean } = {}): Promise<TcpListener> {
    const held = await this.#portGrants('tcp', port, options.exclusive);
    const listener = this.stack.tcpListen(port, options);
    const close = listener.close.bind(listener);
    listener.close = () => {
      close();
      for (const g of held) void this.grants.release(g);
    };
    return listener;
  }

  /** Stops renewals and the stack (the connection stays open). */
  close(): void {
    this.grants.close();
    this.stack.close();
  }

  async #portGrants(proto: 'udp' | 'tcp', port: number, exclusive?: boolean): Promise<HeldGrant[]> {
    if (!Number.isInteger(port) || port < 1 || port > 65_535)
      throw new RangeError(`port: expected 1-65535, got ${port}`);
    const rx = await this.grants.acquire({ dir: 'rx', filter: `${proto} dst port ${port}`, port, exclusive });
    try {
      const tx = await this.grants.acquire({ dir: 'tx', filter: `${proto} src port ${port}`, port });
      return [rx, tx];
    } catch (err) {
      await this.grants.release(rx);
      throw err;
    }
  }
}
