/** `--store` specifications: `sqlite:PATH` (embedded default) or `etcd:URL,URL,...`. */
import { ServerError } from '../errors.ts';
import { EtcdStore, parseEtcdEndpoints } from './etcd.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

/** Creates (does not open) the store a specification names. */
export function storeFromSpec(spec: string): Store {
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (!path) throw new ServerError('EXO_ERR_SERVER_CONFIG', 'sqlite store: no path (sqlite:PATH)');
    return new SqliteStore({ path });
  }
  if (spec.startsWith('etcd:')) return new EtcdStore({ endpoints: parseEtcdEndpoints(spec.slice('etcd:'.length)) });
  throw new ServerError('EXO_ERR_SERVER_CONFIG', `unknown store "${spec}": expected sqlite:PATH or etcd:URL,URL`);
}
