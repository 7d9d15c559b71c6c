// The interactive REPL at a real pseudo-terminal (util-linux `script`): `stop` while monitoring, Ctrl-C, Ctrl-D.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN, findDropwatch } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf } from '../helpers/kernel.js';

const skip = canRunKernelTests() || (existsSync('/usr/bin/script') ? false : 'needs util-linux script for a pty');

test('at a terminal: stop works while monitoring, Ctrl-C stops, Ctrl-D quits', { skip }, async () => {
  const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} -b tracefs -l kas`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', TERM: 'dumb' },
  });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const seen = async (text: string, count = 1) => {
    const deadline = Date.now() + 10_000;
    while (screen.split(text).length - 1 < count) {
      if (Date.now() > deadline)
        throw new Error(`never saw ${count}× ${JSON.stringify(text)} in ${JSON.stringify(screen)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  try {
    await seen('dropwatch> ');
    // Other dropwatch runs may be monitoring at the same time: only this one's instance is ours to check.
    const pid = findDropwatch(child.pid!);
    assert.ok(pid !== null, 'dropwatch runs under script');
    child.stdin.write('start\r');
    await seen('Issue Ctrl-C to stop monitoring');
    // dropwatch cannot take commands while monitoring; we can.
    child.stdin.write('stop\r');
    await seen('Got a stop message');
    child.stdin.write('start\r');
    await seen('Issue Ctrl-C to stop monitoring', 2);
    child.stdin.write('\x03');
    await seen('Got a stop message', 2);
    child.stdin.write('\x04');
    assert.equal(await closed, 0);
    assert.match(screen, /Terminating dropwatch\.\.\.\r\nShutting down \.\.\.\r\n$/);
    assert.equal(screen.match(/Kernel monitoring activated\./g)?.length, 2);
    assert.deepEqual(instancesOf(pid), [], 'no instance left behind');
  } finally {
    child.kill('SIGKILL');
  }
});
