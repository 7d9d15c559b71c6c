// Where the project's files are, found from this module's own place so tests work from any working directory.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  // Compiled to dist/test/helpers, source in test/helpers: walk up to package.json beside test/fixtures.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'fixtures'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the project root (package.json beside test/fixtures)');
    dir = up;
  }
}

export const projectRoot = findRoot();

/** A path under test/fixtures, e.g. fixturePath('netdm', 'manifest.json'). */
export function fixturePath(...parts: string[]): string {
  return join(projectRoot, 'test', 'fixtures', ...parts);
}
