// Loads the package's one N-API addon (native/): the netlink socket and the stdout hangup watch. node-gyp-build picks
// a local build (build/Release, from a checkout or a fallback build at install) before a prebuilt one (prebuilds/,
// shipped in the packed tarball).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DropwatchError } from '../errors/index.js';

interface NodeGypBuild {
  (dir: string): unknown;
  resolve(dir: string): string;
}

// dist/src/native/addon.js → the package root.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LOCAL_BUILD = join(ROOT, 'build', 'Release', 'netlink_native.node');

let cached: { addon: unknown; path: string } | undefined;

/** The addon's exports and the file they came from. */
export function loadAddon(): { addon: unknown; path: string } {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    // node-gyp-build's own first choice, without loading it (a few ms of start-up) when it is there.
    path = existsSync(LOCAL_BUILD) ? LOCAL_BUILD : (require('node-gyp-build') as NodeGypBuild).resolve(ROOT);
  } catch (err) {
    throw new DropwatchError(
      'E_IO',
      `no netlink addon for this machine under ${ROOT} (build/Release or prebuilds/): run \`npm run build:native\``,
      { cause: err },
    );
  }
  try {
    cached = { addon: require(path) as unknown, path };
  } catch (err) {
    // A prebuilt addon for a newer libc, say: the first line of the loader's message says which symbol is missing.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new DropwatchError('E_IO', `cannot load the netlink addon ${path}: ${why}`, { cause: err });
  }
  return cached;
}
