// `exonet bench wire`: operations per second for parsing a TCP/IPv4 frame layer by layer, emitting one,
// and extracting the flow key (the driver's hot path), on one core.

import { emitEthernet, parseEthernet } from '../ethernet.ts';
import { extractFlowKey, FlowKey } from '../flow-key.ts';
import { EtherType, IpProtocol, TcpFlags } from '../index.ts';
import { emitIpv4, ipv4Repr, parseIpv4 } from '../ipv4.ts';
import { emitTcp, parseTcp, type TcpRepr } from '../tcp.ts';

function rate(iterations: number, body: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) body();
  const ms = performance.now() - t0;
  return Math.round((iterations * 1000) / Math.max(ms, 1e-3));
}

/** Runs the benchmark; returns ops/s per operation. */
export async function run({ quick, log }: { quick: boolean; log: (line: string) => void }) {
  const n = quick ? 1000 : 1_000_000;
  const seg: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seq: 1,
    ack: 2,
    flags: TcpFlags.ACK | TcpFlags.PSH,
    window: 512,
    urgent: 0,
    options: { timestamp: { value: 1, echo: 2 } },
    payload: new Uint8Array(1024),
  };
  const src = 0x0a000001;
  const dst = 0x0a000002;
  const frame = new Uint8Array(14 + 20 + 32 + 1024);
  const build = (): void => {
    emitTcp(seg, frame, 34, src, dst);
    emitIpv4(ipv4Repr({ src, dst, protocol: IpProtocol.TCP, payload: frame.subarray(34) }), frame, 14);
    emitEthernet(
      {
        dst: frame.subarray(0, 6),
        src: frame.subarray(6, 12),
        etherType: EtherType.IPV4,
        vlans: [],
        payload: frame.subarray(14),
      },
      frame,
    );
  };
  build();
  const parse = (): void => {
    const e = parseEthernet(frame);
    if (!e.ok) throw new Error('bench frame does not parse');
    const ip = parseIpv4(e.value.payload);
    if (!ip.ok) throw new Error('bench frame does not parse');
    const t = parseTcp(ip.value.payload, ip.value.src, ip.value.dst);
    if (!t.ok) throw new Error('bench frame does not parse');
  };
  const key = new FlowKey();
  const flow = (): void => {
    extractFlowKey(frame, key);
  };
  const result = {
    frame_bytes: frame.length,
    parse_tcp_frame_per_s: rate(n, parse),
    emit_tcp_frame_per_s: rate(n, build),
    flow_key_per_s: rate(n * 4, flow),
  };
  log(
    `wire: parse ${result.parse_tcp_frame_per_s}/s, emit ${result.emit_tcp_frame_per_s}/s, flow key ${result.flow_key_per_s}/s`,
  );
  return result;
}
