import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PermissionClient } from '../src/client.ts';

describe('PermissionClient at the command line boundary', () => {
  it('refuses a server that is not an http(s) URL, naming where it came from', () => {
    expect(() => new PermissionClient({ server: 'notaurl' })).toThrow(
      /"notaurl" is not an http:\/\/ or https:\/\/ URL/,
    );
    expect(() => new PermissionClient({ server: 'ftp://x' })).toThrow(/--server or \$EXONET_SERVER/);
  });

  it('says which server it cannot reach and why, instead of "fetch failed"', async () => {
    // A port nobody listens on: take a free one and close it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const client = new PermissionClient({ server: `http://127.0.0.1:${port}` });
    await expect(client.request('GET', '/v1/rules')).rejects.toThrow(
      new RegExp(`cannot reach the permission server at http://127.0.0.1:${port}: ECONNREFUSED`),
    );
  });
});
