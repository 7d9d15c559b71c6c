// tracefs mounted by dropwatch itself (a fresh mount namespace where nobody mounted it) is unmounted when the run ends;
// one that was already mounted stays. Each case runs in a private mount namespace of its own, so the host's mount is
// never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/cli.js';
import { canRunKernelTests, TRACEFS } from '../helpers/kernel.js';

const skip = canRunKernelTests();

/** Runs `shell` in a private mount namespace; resolves with its stdout and stderr. */
function inMountNamespace(shell: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', shell], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const RUN = `${process.execPath} ${BIN} -b tracefs -s -l kas --filter 'reason == NO_SOCKET'`;
const MOUNTED = `if mountpoint -q ${TRACEFS}; then echo MOUNTED; else echo UNMOUNTED; fi`;

for (const [how, run] of [
  ['-d 1 ends the run', `${RUN} -d 1`],
  ['SIGTERM ends the run', `${RUN} & p=$!; sleep 2; kill -TERM $p; wait $p`],
] as const) {
  test(`tracefs we mounted is unmounted at the end (${how})`, { skip }, async () => {
    const r = await inMountNamespace(`umount ${TRACEFS} && ${MOUNTED} && ${run}; echo "exit $?"; ${MOUNTED}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Kernel monitoring activated\./);
    // stdout: the state before, the drops the run saw (other processes' too), its exit status, the state after.
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'UNMOUNTED', 'not mounted before the run');
    assert.deepEqual(lines.slice(-2), ['exit 0', 'UNMOUNTED'], r.stdout);
  });
}

test('tracefs mounted before the run stays mounted', { skip }, async () => {
  const r = await inMountNamespace(`${RUN} -d 1; echo "exit $?"; ${MOUNTED}`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').slice(-2), ['exit 0', 'MOUNTED'], r.stdout);
});
