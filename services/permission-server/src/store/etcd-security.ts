/**
 * Transport security and authentication towards etcd. `--store etcd:URL,URL` has no room for certificates,
 * so they come from options or the environment:
 *
 * | variable | meaning |
 * |---|---|
 * | `EXONET_ETCD_CA_FILE` | PEM CA bundle that signed the etcd server certificates (else the system roots) |
 * | `EXONET_ETCD_CERT_FILE`, `EXONET_ETCD_KEY_FILE` | PEM client certificate and key (etcd `--client-cert-auth`) |
 * | `EXONET_ETCD_USER`, `EXONET_ETCD_PASSWORD` (or `EXONET_ETCD_PASSWORD_FILE`) | etcd role-based auth |
 *
 * Refused, because each would fail open or silently: mixing `http://` and `https://` endpoints, TLS files
 * with `http://` endpoints, a certificate without its key (or the reverse), and a password over `http://`.
 */
import { readFileSync } from 'node:fs';
import { StoreUsageError } from './etcd-errors.ts';

/** TLS material (PEM). */
export interface EtcdTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** etcd user and password. */
export interface EtcdAuth {
  readonly username: string;
  readonly password: string;
}

/** Reads TLS and auth settings from the environment (undefined members when not set). */
export function etcdSecurityFromEnvironment(env: NodeJS.ProcessEnv = process.env): {
  tls?: EtcdTls;
  auth?: EtcdAuth;
} {
  const read = (name: string): Buffer | undefined => {
    const file = env[name];
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new StoreUsageError(`${name}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const ca = read('EXONET_ETCD_CA_FILE');
  const cert = read('EXONET_ETCD_CERT_FILE');
  const key = read('EXONET_ETCD_KEY_FILE');
  const tls = ca || cert || key ? { ca, cert, key } : undefined;
  const username = env.EXONET_ETCD_USER;
  let password = env.EXONET_ETCD_PASSWORD;
  if (password === undefined && env.EXONET_ETCD_PASSWORD_FILE) {
    password = read('EXONET_ETCD_PASSWORD_FILE')!.toString('utf8').trim();
  }
  if ((username === undefined) !== (password === undefined)) {
    throw new StoreUsageError('EXONET_ETCD_USER and EXONET_ETCD_PASSWORD(_FILE) must be given together');
  }
  const auth = username !== undefined && password !== undefined ? { username, password } : undefined;
  return { tls, auth };
}

/** Checks endpoints against the security settings; returns whether the connection uses TLS. */
export function checkEtcdSecurity(endpoints: readonly string[], tls?: EtcdTls, auth?: EtcdAuth): boolean {
  const secure = endpoints.map((e) => e.startsWith('https://'));
  const anySecure = secure.some(Boolean);
  if (anySecure && !secure.every(Boolean)) {
    throw new StoreUsageError('etcd store: endpoints mix http:// and https://; use one scheme for all');
  }
  if (tls && !anySecure) throw new StoreUsageError('etcd store: TLS files given but the endpoints are http://');
  if (tls && Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new StoreUsageError('etcd store: a client certificate needs its key, and a key its certificate');
  }
  if (auth && !anySecure) {
    throw new StoreUsageError('etcd store: refusing to send the etcd password over http://; use https://');
  }
  return anySecure;
}
