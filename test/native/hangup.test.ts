// The stdout hangup watch against real descriptors in a child process: a pipe whose reader leaves, a socket whose
// peer only stops writing (as journald does with a service's stdout) and then closes, and a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const HANGUP = join(process.cwd(), 'dist/src/native/hangup.js');
// Says whether it watches, then 'gone' with the time since it started watching, and exits.
const CHILD =
  `import { watchHangup } from ${JSON.stringify(HANGUP)};` +
  `const t0 = Date.now();` +
  `const stop = watchHangup(1, () => { process.stderr.write('gone ' + (Date.now() - t0) + '\\n'); process.exit(0); });` +
  `process.stderr.write(stop ? 'watching\\n' : 'nothing to watch\\n');` +
  `setTimeout(() => process.exit(3), 20000);`;

function child(stdout: 'pipe' | number | Socket): {
  proc: ChildProcess;
  stderr: () => string;
  /** Resolves once the child's stderr holds `text`; rejects if it closes without. */
  said: (text: string) => Promise<void>;
  exited: Promise<number>;
} {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  const stderr = proc.stderr!;
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const said = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!err.includes(text)) return;
        stderr.off('data', check).off('close', closed);
        resolve();
      };
      const closed = () => reject(new Error(`the child never said ${JSON.stringify(text)}: ${err}`));
      stderr.on('data', check).once('close', closed);
      check();
    });
  const exited = new Promise<number>((resolve) => proc.on('exit', (code) => resolve(code ?? -1)));
  return { proc, stderr: () => err, said, exited };
}

test('a pipe whose reader leaves is noticed at once, with nothing written', async () => {
  const c = child('pipe');
  await c.said('watching');
  const left = Date.now();
  c.proc.stdout!.destroy();
  assert.equal(await c.exited, 0, c.stderr());
  const took = Date.now() - left;
  console.log(`pipe: the child exited ${took} ms after its reader left`);
  assert.ok(took < 1000, `${took} ms`);
});

test('a socket: a peer that only stops writing is still a reader; one that closes is gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dwtest-hangup-'));
  const path = join(dir, 'sock');
  const server = createServer({ allowHalfOpen: true });
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const ours = connect({ path, allowHalfOpen: true });
  await new Promise<void>((resolve) => ours.on('connect', resolve));
  try {
    const c = child(ours);
    const peer = await accepted;
    await c.said('watching');
    peer.end();
    // Not an event but its absence: the child is given this long to (wrongly) leave.
    await sleep(500);
    assert.equal(c.proc.exitCode, null, `a half-closed peer was taken for gone: ${c.stderr()}`);
    peer.destroy();
    assert.equal(await c.exited, 0, c.stderr());
  } finally {
    ours.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a regular file has no reader to lose: nothing is watched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dwtest-hangup-'));
  const fd = openSync(join(dir, 'out'), 'w');
  try {
    const c = child(fd);
    await c.said('\n');
    assert.equal(c.stderr(), 'nothing to watch\n');
    c.proc.kill();
    await c.exited;
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
