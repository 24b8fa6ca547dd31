/** TLS and authentication towards etcd: refusals that would fail open, and a real TLS cluster with client certificates. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../src/store/etcd.ts';
import { checkEtcdSecurity, etcdSecurityFromEnvironment } from '../src/store/etcd-security.ts';
import { EtcdCluster } from './support/etcd-cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-etcd-sec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('etcd security settings', () => {
  it('reads TLS files and credentials from the environment', () => {
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    writeFileSync(join(dir, 'pw'), 'secret\n');
    const s = etcdSecurityFromEnvironment({
      EXONET_ETCD_CA_FILE: join(dir, 'ca.pem'),
      EXONET_ETCD_USER: 'exonet',
      EXONET_ETCD_PASSWORD_FILE: join(dir, 'pw'),
    });
    expect(s.tls?.ca?.toString()).toBe('CA');
    expect(s.auth).toEqual({ username: 'exonet', password: 'secret' });
    expect(etcdSecurityFromEnvironment({})).toEqual({ tls: undefined, auth: undefined });
  });

  it('refuses settings that would fail open or silently', () => {
    expect(() => etcdSecurityFromEnvironment({ EXONET_ETCD_USER: 'u' })).toThrow(/together/);
    expect(() => etcdSecurityFromEnvironment({ EXONET_ETCD_CA_FILE: join(dir, 'missing') })).toThrow(/cannot read/);
    const https = ['https://127.0.0.1:1', 'https://127.0.0.1:2'];
    expect(() => checkEtcdSecurity(['https://127.0.0.1:1', 'http://127.0.0.1:2'])).toThrow(/mix/);
    expect(() => checkEtcdSecurity(['http://127.0.0.1:1'], { ca: Buffer.from('x') })).toThrow(/http:/);
    expect(() => checkEtcdSecurity(https, { cert: Buffer.from('x') })).toThrow(/key/);
    expect(() => checkEtcdSecurity(['http://127.0.0.1:1'], undefined, { username: 'u', password: 'p' })).toThrow(
      /password/,
    );
    expect(checkEtcdSecurity(https, { ca: Buffer.from('x') }, { username: 'u', password: 'p' })).toBe(true);
    expect(checkEtcdSecurity(['http://127.0.0.1:1'])).toBe(false);
  });

  it('talks TLS with a client certificate to a TLS cluster, and is refused without one', async () => {
    const cluster = await EtcdCluster.start({ size: 1, tls: true });
    try {
      const files = cluster.tlsFiles!;
      const tls = { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) };
      const store = new EtcdStore({ endpoints: cluster.endpoints, tls });
      await store.open();
      await store.ping();
      const entry = await store.revoke({ kind: 'jti', value: 'tls', at: 1, until: 2, reason: '' }, { actor: 't' });
      expect((await store.listRevocations(0)).entries).toEqual([entry]);
      await store.close();
      const anonymous = new EtcdStore({ endpoints: cluster.endpoints, tls: { ca: tls.ca }, callTimeoutMs: 500 });
      await expect(anonymous.open()).rejects.toMatchObject({ code: 'EXO_ERR_STORE_UNAVAILABLE' });
      await anonymous.close();
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});
