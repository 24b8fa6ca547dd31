/**
 * The task-side network stack: protocol helpers so tasks need no sockets.
 * @packageDocumentation
 */
export type { ArpOptions, NeighborNaming } from './arp-cache.ts';
export { ArpCache } from './arp-cache.ts';
export { AsyncQueue } from './async-queue.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { ManualClock, systemClock } from './clock.ts';
export type { NetErrorCode } from './errors.ts';
export { NetError } from './errors.ts';
export type { ExampleServices, ExampleServicesOptions } from './example-services.ts';
export { startExampleServices } from './example-services.ts';
export type { FaultLinkOptions, FaultPlan, FaultStats } from './fault-link.ts';
export { FaultInjectingLink } from './fault-link.ts';
export type { FrameHandler, FrameLink } from './frame-link.ts';
export { framesOf } from './frame-link.ts';
export type { HttpRequest, HttpResponse, HttpServer, HttpServerOptions } from './http-server.ts';
export { serveHttp } from './http-server.ts';
export type { LinkPairOptions } from './link-pair.ts';
export { createLinkPair } from './link-pair.ts';
export type { StackOptions, StackStats } from './stack.ts';
export { createStack, NetStack } from './stack.ts';
export type { TcpConfig, TcpState } from './tcp/tcp-connection.ts';
export type { TcpLayerOptions } from './tcp/tcp-layer.ts';
export type { TcpListenOptions } from './tcp/tcp-listener.ts';
export { TcpListener } from './tcp/tcp-listener.ts';
export type { TcpConnectOptions } from './tcp/tcp-socket.ts';
export { TcpSocket } from './tcp/tcp-socket.ts';
export type { BindUdpOptions, UdpDatagram } from './udp-endpoint.ts';
export { UdpEndpoint } from './udp-endpoint.ts';
export type { UdpTunnelLink, UdpTunnelOptions } from './udp-tunnel-link.ts';
export { openUdpTunnelLink } from './udp-tunnel-link.ts';
