// Builds the addon with node-gyp against the headers of the node that runs us, when it ships them (Debian, NodeSource
// and nodejs.org builds all do): node-gyp would otherwise try to download headers, and these machines have no network.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const prefix = resolve(process.execPath, '../..');
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && existsSync(resolve(prefix, 'include/node/node_api.h')))
  args.push(`--nodedir=${prefix}`);
const result = spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.error) {
  console.error(`native/build.mjs: cannot run node-gyp: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
