/** The local etcd cluster harness (it lives in src so the revocation benchmark can start one too). */
export { EtcdCluster, type EtcdClusterOptions, type EtcdMember } from '../../src/store/etcd-local-cluster.ts';
