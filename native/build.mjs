// Builds the addon from source with node-gyp, against the installed node's own headers (native/nodedir.mjs):
// `npm run build:native`, and the install step's fallback when no prebuilt addon loads here (native/install.mjs).
import { spawnSync } from 'node:child_process';
import { localNodedir } from './nodedir.mjs';

const nodedir = localNodedir();
const args = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const result = spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.error) {
  console.error(`native/build.mjs: cannot run node-gyp: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
