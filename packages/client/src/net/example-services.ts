/**
 * The example services of exonet's tasks, ready to start on any stack: UDP echo (RFC 862) and a small HTTP
 * page. `exonet up` and the examples use them; tests run them against Linux.
 */
import { formatIpv4 } from '@exonet/wire';
import { type HttpRequest, type HttpResponse, type HttpServer, serveHttp } from './http-server.ts';
import type { NetStack } from './stack.ts';
import type { UdpEndpoint } from './udp-endpoint.ts';

/** Which services to start; a port of `false` leaves the service off. */
export interface ExampleServicesOptions {
  /** UDP echo port (default 7). */
  readonly udpEchoPort?: number | false;
  /** HTTP port (default 80). */
  readonly httpPort?: number | false;
  /** Builds the HTTP answer (default: a one-line greeting naming the address and path). */
  readonly page?: (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;
}

/** Running example services. */
export interface ExampleServices {
  readonly udpEcho: UdpEndpoint | null;
  readonly http: HttpServer | null;
  /** Datagrams echoed so far. */
  readonly echoed: number;
  close(): void;
}

/** Starts UDP echo and the HTTP page on `stack`. */
export function startExampleServices(stack: NetStack, opts: ExampleServicesOptions = {}): ExampleServices {
  const udpPort = opts.udpEchoPort ?? 7;
  const httpPort = opts.httpPort ?? 80;
  let echoed = 0;
  const udpEcho =
    udpPort === false
      ? null
      : stack.bindUdp(udpPort, {
          onDatagram: (d) => {
            if (udpEcho?.reply(d, d.data)) echoed++;
          },
        });
  const page =
    opts.page ??
    ((req: HttpRequest): HttpResponse => ({
      body: `hello from the exonet task at ${formatIpv4(stack.address)}: ${req.method} ${req.target}\n`,
    }));
  const http = httpPort === false ? null : serveHttp(stack, { port: httpPort, handler: page });
  return {
    udpEcho,
    http,
    get echoed() {
      return echoed;
    },
    close() {
      udpEcho?.close();
      http?.close();
    },
  };
}
