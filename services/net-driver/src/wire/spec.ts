import { isIP } from 'node:net';
import { WireError } from '../errors.ts';
import { LoopbackWire, NullWire } from './cable.ts';
import { TrafficGenerator } from './generator.ts';
import { PcapWire } from './pcap-wire.ts';
import { UdpWire } from './udp.ts';
import type { Wire } from './wire.ts';

/** A parsed wire specification. */
export type WireSpec =
  | { readonly kind: 'udp'; readonly localPort: number; readonly remoteHost: string; readonly remotePort: number }
  | { readonly kind: 'pcap'; readonly input?: string; readonly output?: string }
  | {
      readonly kind: 'gen';
      readonly frameSize: number;
      readonly count?: number;
      readonly pattern: 'sequenced' | 'fixed';
    }
  | { readonly kind: 'loopback' }
  | { readonly kind: 'null' };

/** The forms {@link parseWireSpec} accepts, for help texts and error messages. */
export const WIRE_SPEC_FORMS = [
  'udp:LOCALPORT:REMOTEHOST:REMOTEPORT',
  'pcap:in=FILE[,out=FILE]',
  'pcap:out=FILE',
  'gen:FRAMESIZE[:[COUNT][:fixed|sequenced]]',
  'loopback',
  'null',
] as const;

function bad(spec: string, why: string): WireError {
  return new WireError('EXO_ERR_WIRE_SPEC', `bad wire "${spec}": ${why} (expected ${WIRE_SPEC_FORMS.join(' or ')})`);
}

function port(spec: string, what: string, text: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(text)) throw bad(spec, `${what} "${text}" is not a port number`);
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero)) throw bad(spec, `${what} ${n} is out of range`);
  return n;
}

/** Parses a wire specification; malformed input is an EXO_ERR_WIRE_SPEC error saying what is wrong. */
export function parseWireSpec(spec: string): WireSpec {
  if (typeof spec !== 'string' || spec.length === 0 || spec.length > 4096) throw bad(String(spec), 'empty or too long');
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  switch (kind) {
    case 'udp': {
      // REMOTEHOST may be an IPv6 address in brackets: udp:5555:[::1]:5556
      const m = /^(\d+):(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(rest);
      if (!m) throw bad(spec, 'expected three fields LOCALPORT:REMOTEHOST:REMOTEPORT');
      const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2];
      if (m[2].startsWith('[') && isIP(host) !== 6) throw bad(spec, `"${host}" is not an IPv6 address`);
      if (!isIP(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(host)) throw bad(spec, `"${host}" is not a host`);
      return {
        kind: 'udp',
        localPort: port(spec, 'local port', m[1], true),
        remoteHost: host,
        remotePort: port(spec, 'remote port', m[3], false),
      };
    }
    case 'pcap': {
      let input: string | undefined;
      let output: string | undefined;
      for (const part of rest.split(',')) {
        const eq = part.indexOf('=');
        const key = part.slice(0, eq);
        const value = part.slice(eq + 1);
        if (eq < 1 || !value) throw bad(spec, `"${part}" is not in=FILE or out=FILE`);
        if (key === 'in' && input === undefined) input = value;
        else if (key === 'out' && output === undefined) output = value;
        else throw bad(spec, `unexpected "${key}"`);
      }
      return { kind: 'pcap', input, output };
    }
    case 'gen': {
      const [size, count, pattern, ...more] = rest.split(':');
      if (more.length || !/^\d{1,5}$/.test(size ?? '')) throw bad(spec, 'expected gen:FRAMESIZE[:COUNT[:PATTERN]]');
      const frameSize = Number(size);
      if (frameSize < 18 || frameSize > 16379) throw bad(spec, `frame size ${frameSize} is not between 18 and 16379`);
      if (count !== undefined && count !== '' && !/^\d{1,15}$/.test(count)) {
        throw bad(spec, `count "${count}" is not a number`);
      }
      if (pattern !== undefined && pattern !== 'fixed' && pattern !== 'sequenced') {
        throw bad(spec, `pattern "${pattern}" is not fixed or sequenced`);
      }
      return {
        kind: 'gen',
        frameSize,
        count: count === undefined || count === '' ? undefined : Number(count),
        pattern: pattern ?? 'sequenced',
      };
    }
    case 'loopback':
    case 'null':
      if (rest) throw bad(spec, `${kind} takes no arguments`);
      return { kind };
    default:
      throw bad(spec, `unknown kind "${kind}"`);
  }
}

/**
 * Opens the wire a specification names.
 * @param context.mac the NIC's address (generated traffic is addressed to it)
 */
export async function openWire(spec: string | WireSpec, context: { readonly mac: Uint8Array }): Promise<Wire> {
  const s = typeof spec === 'string' ? parseWireSpec(spec) : spec;
  switch (s.kind) {
    case 'udp':
      return UdpWire.open(s.localPort, s.remoteHost, s.remotePort);
    case 'pcap':
      return new PcapWire({ ...s, mac: context.mac });
    case 'gen':
      return new TrafficGenerator({ dst: context.mac, frameSize: s.frameSize, count: s.count, pattern: s.pattern });
    case 'loopback':
      return new LoopbackWire();
    case 'null':
      return new NullWire();
  }
}
