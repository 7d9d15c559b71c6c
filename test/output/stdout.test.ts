// Standard output's ledger: which drops reached the OS when the reader stopped taking output part-way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { createLedger, guardStdout, PIPE_BUF, writtenOf } from '../../src/output/stdout.js';

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

/** `n` JSON lines of about `size` bytes, joined as the session hands them over, with where each drop ends. */
function jsonLines(n: number, size: number): { text: string; reported: { drops: number; ends: number[] } } {
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(size - 20) }));
  const ends: number[] = [];
  let at = 0;
  for (const l of lines) {
    at += l.length;
    ends.push(at);
    at += 1;
  }
  return { text: lines.join('\n'), reported: { drops: n, ends } };
}

/** A pipe that takes `room` writes at once and then holds the next until `release`. */
function pipeWithRoom(room: number) {
  const writes: string[] = [];
  let held: (() => void) | null = null;
  const stream = new Writable({
    highWaterMark: 1,
    write: (chunk: Buffer, _enc, cb) => {
      writes.push(chunk.toString());
      if (writes.length <= room) cb();
      else held = cb;
    },
  });
  return { stream, writes, release: () => held?.() };
}

const fastTimers = () => {
  let t = 0;
  return {
    timers: { setTimeout: (fn: () => void) => setImmediate(() => ((t += 100), fn())), clearTimeout: () => {} },
    now: () => t,
  };
};

test('into a pipe: whole lines of at most PIPE_BUF bytes, one write at a time, so what the OS took ends a line', async () => {
  const pipe = pipeWithRoom(2);
  const guard = guardStdout(pipe.stream, undefined, 1 << 20, PIPE_BUF);
  const { text, reported } = jsonLines(100, 120);
  guard.write(text, reported);
  // Two writes taken at once, the third held: nothing more is handed to the stream behind it.
  assert.equal(pipe.writes.length, 3);
  for (const w of pipe.writes) {
    assert.ok(Buffer.byteLength(w) <= PIPE_BUF, `${Buffer.byteLength(w)} bytes`);
    assert.ok(w.endsWith('\n'));
  }
  const taken = pipe.writes.slice(0, 2).join('').split('\n').length - 1;
  assert.ok(taken > 40 && taken < 100, `${taken} lines taken`);
  assert.equal(guard.congested(), false);
  // The reader never comes back: the held write and everything queued behind it are the drops not taken.
  const { timers, now } = fastTimers();
  assert.equal(await guard.settle(timers, now), 100 - taken);
  guard.release();
});

test('into a pipe: once the reader takes again, the rest follows in order and nothing is counted', async () => {
  const pipe = pipeWithRoom(1);
  const guard = guardStdout(pipe.stream, undefined, 1 << 20, PIPE_BUF);
  const first = jsonLines(50, 200);
  guard.write(first.text, first.reported);
  guard.write('{"type":"lost"}');
  const settled = guard.settle();
  // From now on every write is taken at once.
  const take = () => {
    pipe.release();
    if (pipe.writes.join('').split('\n').length - 1 < 51) setImmediate(take);
  };
  setImmediate(take);
  assert.equal(await settled, 0);
  assert.equal(pipe.writes.join(''), `${first.text}\n{"type":"lost"}\n`);
  guard.release();
});

test('a line longer than PIPE_BUF goes whole in one write; without a chunk size (a file) a report is one write', () => {
  const pipe = pipeWithRoom(10);
  const guard = guardStdout(pipe.stream, undefined, 1 << 20, PIPE_BUF);
  const long = 'y'.repeat(3 * PIPE_BUF);
  guard.write(`short\n${long}\nshort`, { drops: 3, ends: [5, 6 + long.length, 12 + long.length] });
  assert.deepEqual(pipe.writes, ['short\n', `${long}\n`, 'short\n']);
  const file = pipeWithRoom(10);
  const plain = guardStdout(file.stream);
  const { text, reported } = jsonLines(100, 120);
  plain.write(text, reported);
  assert.deepEqual(
    file.writes.filter((w) => w !== ''),
    [`${text}\n`],
  );
  guard.release();
  plain.release();
});
