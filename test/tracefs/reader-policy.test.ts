// The tracefs reader loop's timing rules: back-off between passes and when a drain is complete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createBackoff,
  createDrain,
  DRAIN_MAX_PASSES,
  PASS_MORE,
  PASS_NONE,
  PASS_SOME,
  type PassResult,
} from '../../src/tracefs/reader-policy.js';

const run = (policy: { after(p: PassResult): number | null }, passes: PassResult[]) =>
  passes.map((p) => policy.after(p));

test('back-off: pollMs after data, doubling while idle up to maxPollMs, none while a CPU has more', () => {
  const b = createBackoff(10, 100);
  assert.deepEqual(
    run(b, [PASS_SOME, PASS_NONE, PASS_NONE, PASS_NONE, PASS_NONE, PASS_NONE]),
    [10, 20, 40, 80, 100, 100],
  );
  // A pass with more to read waits not at all and leaves the idle doubling where it was.
  assert.deepEqual(run(b, [PASS_MORE, PASS_NONE, PASS_SOME, PASS_MORE, PASS_NONE]), [0, 100, 10, 0, 20]);
});

test('back-off: the first idle pass doubles from pollMs; a maxPollMs below pollMs never shortens the wait', () => {
  assert.deepEqual(run(createBackoff(10, 100), [PASS_NONE, PASS_NONE]), [20, 40]);
  assert.deepEqual(run(createBackoff(50, 5), [PASS_NONE, PASS_SOME, PASS_NONE]), [50, 50, 50]);
});

test('drain: done after two empty passes in a row, pausing briefly after an empty one', () => {
  const d = createDrain(10);
  assert.deepEqual(run(d, [PASS_SOME, PASS_MORE, PASS_NONE, PASS_SOME, PASS_NONE, PASS_NONE]), [0, 0, 5, 0, 5, null]);
  // The pause is the poll interval when that is shorter.
  assert.deepEqual(run(createDrain(2), [PASS_NONE, PASS_NONE]), [2, null]);
});

test('drain: ends after DRAIN_MAX_PASSES even if the CPUs never go empty', () => {
  const d = createDrain(10);
  let passes = 0;
  while (d.after(PASS_MORE) !== null) passes++;
  assert.equal(passes + 1, DRAIN_MAX_PASSES);
});
