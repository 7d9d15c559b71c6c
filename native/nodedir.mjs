// The headers of the node that runs us, when it ships them (Debian, NodeSource and nodejs.org builds all do): given to
// node-gyp as its nodedir, so it does not try to download them (these machines have no network for that).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The install prefix holding include/node/node_api.h, or null (node-gyp then fetches headers as usual). */
export function localNodedir() {
  if (process.env.npm_config_nodedir) return null;
  const prefix = resolve(process.execPath, '../..');
  return existsSync(resolve(prefix, 'include/node/node_api.h')) ? prefix : null;
}
