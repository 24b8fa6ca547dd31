import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readJson, serverOptions } from '../src/cli.ts';
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

  it.each([
    [{ heartbeatSec: 'abc' }, /heartbeatSec: .*number/],
    [{ stalenessSec: -5 }, /stalenessSec: /],
    [{ publishDelaySec: -1 }, /publishDelaySec: /],
    [{ listValiditySec: 0 }, /listValiditySec: /],
    [{ issuer: 42 }, /issuer: /],
    [{ kekFile: 5 }, /kekFile: /],
    [{ rateLimit: { max: 'x', timeWindowMs: 1000 } }, /rateLimit\.max: /],
    [{ rateLimit: { max: 5 } }, /rateLimit\.timeWindowMs: /],
    [{ rateLimit: { max: 5, timeWindowMs: 1, burst: 2 } }, /rateLimit/],
    [{ logLevel: 'loud' }, /logLevel: /],
    [{ sse: { maxStreams: 0 } }, /sse\.maxStreams: /],
    [[1, 2], /expected a JSON object of settings/],
    ['text', /expected a JSON object of settings/],
  ])('refuses the config %j, naming the file and the setting', (config, message) => {
    const file = join(dir, 'typed.json');
    writeFileSync(file, JSON.stringify(config));
    expect(() => serverOptions({ config: file })).toThrow(message);
    expect(() => serverOptions({ config: file })).toThrow(/typed\.json: /);
  });

  it('refuses a config file that is not JSON, and bad --staleness and --log-level flags', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{broken');
    expect(() => serverOptions({ config: file })).toThrow(/broken\.json: not a readable JSON file/);
    expect(() => serverOptions({ config: join(dir, 'missing.json') })).toThrow(/missing\.json: not a readable/);
    expect(() => serverOptions({ staleness: 'abc' })).toThrow(/--staleness: expected a whole number/);
    expect(() => serverOptions({ logLevel: 'loud' })).toThrow(/--log-level: expected one of/);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, JSON.stringify({ sse: { maxStreams: 8 }, logLevel: 'warn', heartbeatSec: 0.5 }));
    expect(serverOptions({ config: ok })).toEqual({ sse: { maxStreams: 8 }, logLevel: 'warn', heartbeatSec: 0.5 });
  });

  it('reads policy documents naming the file when it is missing or not JSON', async () => {
    const good = join(dir, 'rule.json');
    writeFileSync(good, '{"id":"r"}');
    expect(await readJson(good)).toEqual({ id: 'r' });
    const bad = join(dir, 'rule-bad.json');
    writeFileSync(bad, '{bad');
    await expect(readJson(bad)).rejects.toThrow(/rule-bad\.json is not JSON: /);
    await expect(readJson(join(dir, 'missing.json'))).rejects.toThrow(/cannot read .*missing\.json: ENOENT/);
  });

  it('grant request names a holder key file that is not JSON or not an Ed25519 private JWK', async () => {
    const bin = new URL('../../../packages/cli/bin/exonet.js', import.meta.url).pathname;
    const run = promisify(execFile);
    for (const [content, message] of [
      ['{bad', /^exonet: --holder-key: .*key-\d\.jwk is not JSON: /],
      ['{"kty":"RSA"}', /^exonet: --holder-key: expected an Ed25519 private JWK/],
    ] as const) {
      const file = join(dir, `key-${content.length % 10}.jwk`);
      writeFileSync(file, content);
      const args = [bin, 'grant', 'request', '--driver', 'd', '--filter', 'udp', '--holder-key', file];
      const err = await run(process.execPath, args, { env: { ...process.env, EXONET_TOKEN: 'x' } }).catch((e) => e);
      expect(err).toMatchObject({ code: 1 });
      expect((err as { stderr: string }).stderr).toMatch(message);
    }
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
