// Finds and loads the package's one N-API addon (native/): the netlink socket and the stdout hangup watch.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DropwatchError } from '../errors/index.js';

const ADDON = join('build', 'Release', 'netlink_native.node');

let cached: { addon: unknown; path: string } | undefined;

/** The addon's exports and the file they came from; the package root is the nearest ancestor holding build/Release. */
export function loadAddon(): { addon: unknown; path: string } {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      cached = { addon: createRequire(import.meta.url)(candidate) as unknown, path: candidate };
      return cached;
    }
    dir = dirname(dir);
  }
  throw new DropwatchError('E_IO', `netlink addon ${ADDON} is not built: run \`npm run build:native\``);
}
