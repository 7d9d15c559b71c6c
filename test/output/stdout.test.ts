// Standard output's ledger: which drops reached the OS when the reader stopped taking output part-way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { createLedger, guardStdout, writtenOf } from '../../src/output/stdout.js';

test('a piece cut short: only drops whose whole text and the byte after it are out count as written', () => {
  const text = 'ab\nc\n\ndé';
  const piece = { text, reported: { drops: 3, ends: [2, 4, 9] } };
  const bytes = Buffer.byteLength(text) + 1;
  assert.equal(writtenOf(piece, bytes), 0);
  assert.equal(writtenOf(piece, bytes - 2), 0);
  assert.equal(writtenOf(piece, bytes - 3), 1);
  assert.equal(writtenOf(piece, bytes - 5), 2);
  // The last drop's text is out but not its newline: a line cut short is not a line.
  assert.equal(writtenOf(piece, 1), 2);
  assert.equal(writtenOf(piece, 0), 3);
  // A piece that is one report of many drops (a summary line) counts only once it is wholly out.
  assert.equal(writtenOf({ text: '5 drops', reported: { drops: 5 } }, 1), 0);
  assert.equal(writtenOf({ text: '5 drops', reported: { drops: 5 } }, 0), 5);
});

test('the ledger counts what is in flight, and trusts a partial write only when every queued byte is ours', () => {
  const ledger = createLedger();
  ledger.add('x\ny', { drops: 2, ends: [1, 3] });
  ledger.add('zz', { drops: 4 });
  // All queued bytes are ours, and 2 of the first piece's 4 bytes are still queued: its first drop is out.
  assert.equal(ledger.untaken(4 + 3, 2), 5);
  // Something else is queued too (a prompt): nothing of the oldest piece is assumed out.
  assert.equal(ledger.untaken(4 + 3 + 10, 2), 6);
  assert.equal(ledger.untaken(4 + 3, null), 6);
  ledger.taken();
  assert.equal(ledger.untaken(3, 3), 4);
  ledger.taken();
  assert.equal(ledger.untaken(0, 0), 0);
});

test('congested() follows the bytes queued; a reader that never reads is given up and its drops counted', async () => {
  let release: (() => void) | null = null;
  // A writable whose first write never completes, as a pipe nobody reads.
  const stuck = new Writable({
    highWaterMark: 1,
    write: (_chunk, _enc, cb) => {
      release = cb;
    },
  });
  const guard = guardStdout(stuck, undefined, 10);
  stuck.write('0123456789ab\n');
  guard.track('0123456789ab', { drops: 3 });
  assert.equal(guard.congested(), true);
  let t = 0;
  const timers = {
    setTimeout: (fn: () => void) => setImmediate(() => ((t += 100), fn())),
    clearTimeout: () => {},
  };
  assert.equal(await guard.settle(timers, () => t), 3);
  assert.ok(t >= 500, `gave up after ${t} ms`);
  assert.ok(release);
  guard.release();
});

test('a reader that takes everything: nothing counted, settle resolves at once', async () => {
  const out = new PassThrough();
  out.resume();
  const guard = guardStdout(out);
  out.write('line\n');
  guard.track('line', { drops: 1 });
  assert.equal(guard.congested(), false);
  assert.equal(await guard.settle(), 0);
  guard.release();
});
