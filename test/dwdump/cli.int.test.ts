// bin/dwdump as a process on the host (no NET_DM here): help, usage errors, and the missing-family error are one
// line each with the documented exit codes. Captures need the qemu guest (qemu.int.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DWDUMP_BIN } from '../helpers/cli.js';
import { projectRoot } from '../helpers/paths.js';
import { DWDUMP_USAGE } from '../../src/dwdump/options.js';

const run = (...args: string[]) =>
  spawnSync(process.execPath, [DWDUMP_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });

test('-h: help on stdout, exit 0', () => {
  const r = run('-h');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: dwdump \[options\]/);
  assert.equal(r.stderr, '');
});

test('--version: the name and the package version on stdout, exit 0', () => {
  const { version } = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  const r = run('--version');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `dwdump ${version}\n`);
  assert.equal(r.stderr, '');
});

test('--version and --help into a full device (/dev/full): one line naming the failed write, exit 1', () => {
  const full = openSync('/dev/full', 'w');
  try {
    for (const arg of ['--version', '--help']) {
      const r = spawnSync(process.execPath, [DWDUMP_BIN, arg], {
        encoding: 'utf8',
        timeout: 30_000,
        stdio: ['ignore', full, 'pipe'],
      });
      assert.equal(r.status, 1, `${arg}: ${r.stderr}`);
      assert.equal(r.stderr, 'dwdump: cannot write standard output: No space left on device\n', arg);
    }
  } finally {
    closeSync(full);
  }
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

test('a SIGTERM once its code runs (the addon loaded) never kills dwdump by the default action', async () => {
  for (let i = 0; i < 5; i++) {
    const child = spawn(process.execPath, [DWDUMP_BIN, '-w', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('exit', (code, signal) => resolve([code, signal])),
    );
    // As soon as the addon is mapped (it loads it to look NET_DM up): on this kernel the lookup fails within ms.
    let mapped = false;
    while (!mapped && child.exitCode === null) {
      try {
        mapped = readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes('netlink_native');
      } catch {
        break;
      }
      if (!mapped) await new Promise((r) => setImmediate(r));
    }
    if (mapped) child.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.equal(signal, null, `killed by ${signal} (run ${i + 1})`);
    assert.ok(code === 0 || code === 1, `exit ${code}: ${stderr}`);
    assert.doesNotMatch(stderr, /internal error|\n\s+at /);
  }
});
