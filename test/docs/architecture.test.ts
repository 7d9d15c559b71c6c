// docs/architecture.md stays a map: short, and naming every file under src/, so a moved or added file shows here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { projectRoot } from '../helpers/paths.js';

const SRC = join(projectRoot, 'src');
const map = readFileSync(join(projectRoot, 'docs', 'architecture.md'), 'utf8');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [relative(SRC, path)];
  });
}

test('docs/architecture.md names every file under src/ (relative to src/, in backticks)', () => {
  const all = files(SRC);
  assert.ok(all.length > 50, 'the walk found the source tree');
  assert.deepEqual(
    all.filter((f) => !map.includes(`\`${f}\``)),
    [],
  );
});

test('docs/architecture.md is a map, not a manual: 12 kB at most', () => {
  assert.ok(Buffer.byteLength(map) <= 12 * 1024, `${Buffer.byteLength(map)} bytes`);
});
