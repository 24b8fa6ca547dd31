/** Text form of either kind of IP address (IPv6 in brackets when followed by a port is the caller's job). */
import { formatIpv4, formatIpv6, type IpAddress } from '@exonet/wire';

/** "10.0.0.1" or "fd00::1". */
export function formatIp(a: IpAddress): string {
  return typeof a === 'number' ? formatIpv4(a) : formatIpv6(a);
}

/** "10.0.0.1:80" or "[fd00::1]:80". */
export function formatEndpoint(a: IpAddress, port: number): string {
  return typeof a === 'number' ? `${formatIpv4(a)}:${port}` : `[${formatIpv6(a)}]:${port}`;
}

/** A Map key for an address. */
export function ipKey(a: IpAddress): string {
  return typeof a === 'number' ? String(a) : Buffer.from(a.subarray(0, 16)).toString('hex');
}
