// The package's install step: builds the addon with node-gyp. Against this Node's own headers when they are
// installed beside it (as on our machines), so the build never needs to download headers, whatever the npm
// configuration of the user running `npm ci`; an explicit nodedir in the npm configuration still wins.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const prefix = dirname(dirname(process.execPath));
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const gyp = process.env.npm_config_node_gyp;
const result = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.error) console.error(`@exonet/ipc: could not run node-gyp: ${result.error.message}`);
process.exitCode = result.status ?? 1;
