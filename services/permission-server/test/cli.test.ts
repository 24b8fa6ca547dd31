import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serverOptions } from '../src/cli.ts';
import { parseListen } from '../src/server.ts';
import { storeFromSpec } from '../src/store/from-spec.ts';

const dir = mkdtempSync(join(tmpdir(), 'exonet-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('permission-server flags and config file', () => {
  it('merges the config file with the flags, flags winning', () => {
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        store: 'sqlite:/tmp/a.db',
        listen: '0.0.0.0:1',
        stalenessSec: 120,
        rateLimit: { max: 5, timeWindowMs: 1000 },
      }),
    );
    expect(serverOptions({ config: file, listen: '127.0.0.1:0' })).toMatchObject({
      store: 'sqlite:/tmp/a.db',
      listen: '127.0.0.1:0',
      stalenessSec: 120,
      rateLimit: { max: 5 },
    });
    expect(serverOptions({ staleness: '60' })).toEqual({ stalenessSec: 60 });
  });

  it('refuses unknown config keys', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ lisen: 'x' }));
    expect(() => serverOptions({ config: file })).toThrow(/unknown setting\(s\) lisen/);
  });

  it('parses --listen and --store', () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen(':8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:7480')).toEqual({ host: '::1', port: 7480 });
    expect(() => parseListen('host:99999')).toThrow(/HOST:PORT/);
    expect(storeFromSpec('sqlite:/tmp/x.db').kind).toBe('sqlite');
    expect(storeFromSpec('etcd:http://127.0.0.1:2379,http://127.0.0.1:22379').kind).toBe('etcd');
    expect(() => storeFromSpec('mysql:x')).toThrow(/sqlite:PATH or etcd:URL/);
    expect(() => storeFromSpec('sqlite:')).toThrow(/no path/);
  });
});
