// Where the project lives, found from this file so the bench runs from any working directory.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'dropwatch'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the project root (package.json with bin/dropwatch)');
    dir = up;
  }
}

export const projectRoot = findRoot();
export const dropwatchBin = join(projectRoot, 'bin', 'dropwatch');
