/**
 * Port names, as libpcap resolves them for `port NAME` (getservbyname for "tcp" and "udp", i.e. the system's
 * services database, /etc/services): a name known for TCP and UDP with the same number stands for both; a
 * name known for one of them only restricts the filter to that protocol.
 * @module
 */
import { readFileSync } from 'node:fs';

/** A resolved port name: its number, and the one protocol it belongs to (undefined: TCP and UDP alike). */
export interface ServicePort {
  readonly port: number;
  readonly proto: 'tcp' | 'udp' | undefined;
}

type Table = Map<string, { tcp?: number; udp?: number }>;

/** Parses services(5) text: `name port/protocol [aliases...] [# comment]`; the first entry of a name wins. */
export function parseServices(text: string): Table {
  const table: Table = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d{1,5})\/(tcp|udp)$/i.exec(portProto ?? '');
    if (!name || !m) continue;
    const port = Number(m[1]);
    if (port > 65535) continue;
    const proto = m[2]!.toLowerCase() as 'tcp' | 'udp';
    for (const n of [name, ...aliases]) {
      const entry = table.get(n) ?? {};
      if (entry[proto] === undefined) entry[proto] = port;
      table.set(n, entry);
    }
  }
  return table;
}

let system: Table | undefined;

/** The system's services database (/etc/services), read once; empty when there is none. */
function systemServices(): Table {
  if (system === undefined) {
    try {
      system = parseServices(readFileSync('/etc/services', 'utf8'));
    } catch {
      system = new Map();
    }
  }
  return system;
}

/** Resolves a port name as libpcap's pcap_nametoport does; undefined when the name is unknown. */
export function lookupService(name: string, table: Table = systemServices()): ServicePort | undefined {
  const entry = table.get(name);
  if (entry === undefined) return undefined;
  if (entry.tcp !== undefined) {
    // Both with the same number: either protocol. Different numbers (no such entry in common databases):
    // libpcap keeps the TCP one.
    return { port: entry.tcp, proto: entry.udp === entry.tcp ? undefined : 'tcp' };
  }
  if (entry.udp !== undefined) return { port: entry.udp, proto: 'udp' };
  return undefined;
}
