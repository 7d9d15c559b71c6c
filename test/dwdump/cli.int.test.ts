// bin/dwdump as a process on the host (no NET_DM here): help, usage errors, and the missing-family error are one
// line each with the documented exit codes. Captures need the qemu guest (qemu.int.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DWDUMP_BIN } from '../helpers/cli.js';
import { DWDUMP_USAGE } from '../../src/dwdump/options.js';

const run = (...args: string[]) =>
  spawnSync(process.execPath, [DWDUMP_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });

test('-h: help on stdout, exit 0', () => {
  const r = run('-h');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: dwdump \[options\]/);
  assert.equal(r.stderr, '');
});

test('usage errors: one line, then the usage line, exit 1, nothing on stdout', () => {
  for (const args of [['-t', 'x'], ['-o', 'both'], ['--nope'], ['-w']]) {
    const r = run(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0]!, /^dwdump: /);
    assert.equal(lines[1], `Usage: ${DWDUMP_USAGE}`);
  }
});

test('without NET_DM (this host kernel): one line naming the missing family, exit 1', (t) => {
  const r = run('-q');
  if (r.status === 0) {
    t.skip('this kernel has NET_DM');
    return;
  }
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^dwdump: Failed to resolve ID of "NET_DM" family: .*\n$/);
});
