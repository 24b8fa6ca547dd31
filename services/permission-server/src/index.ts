/**
 * Issues expiring Ed25519-signed BPF grants according to capability policy; revocation feed.
 * @packageDocumentation
 */
export { generateToken, hashToken } from './auth.ts';
export { ServerError, type ServerErrorCode, serverErrors } from './errors.ts';
export {
  defaultCompiler,
  FilterBuilder,
  type FilterCompiler,
  libpcapCompiler,
  type RequestedFilter,
} from './filters.ts';
export { type GrantRequest, GrantService, type IssuedGrant } from './grants.ts';
export { KeyManager, loadKek, openPrivateKey, sealPrivateKey } from './keys.ts';
export { CAPABILITIES, PRIVILEGED_PORT_LIMIT } from './policy/capabilities.ts';
export { capabilitiesOf, type Decision, decide, type PolicyRequest, type PolicyView } from './policy/engine.ts';
export { instantiate } from './policy/template.ts';
export { RevocationService } from './revocations.ts';
export { type PermissionServer, type PermissionServerOptions, parseListen, startPermissionServer } from './server.ts';
export { EtcdStore, type EtcdStoreOptions, parseEtcdEndpoints, StoreUnavailableError } from './store/etcd.ts';
export { EtcdCluster, type EtcdClusterOptions } from './store/etcd-local-cluster.ts';
export { storeFromSpec } from './store/from-spec.ts';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite.ts';
export type * from './store/store.ts';
