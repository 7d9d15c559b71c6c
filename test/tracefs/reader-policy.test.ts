// The tracefs reader loop's timing rules: back-off between passes, when a drain is complete, and when the chain gate
// is open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChainGate,
  createBackoff,
  createDrain,
  MAX_WINDOW_STRETCH,
  MIN_CHAIN_WINDOW_MS,
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

test('chain gate: without a rate to go by it stays open all second, until the budget is kept', () => {
  const gate = new ChainGate(1000);
  assert.deepEqual(gate.at(5_000, 0, 0), { open: true, inMs: 1000 });
  assert.deepEqual(gate.at(5_400, 10, 10), { open: true, inMs: 600 });
  assert.deepEqual(gate.at(5_500, 5_000, 1000), { open: false, inMs: 500 }, 'closed once the budget is kept');
});

test("chain gate: at a flood's rate it opens each second only as long as the budget needs", () => {
  const gate = new ChainGate(1000);
  gate.at(9_999, 0, 0);
  // 100,000 drops in the last second: 1000 of them take 10 ms.
  assert.deepEqual(gate.at(10_000, 100_000, 0), { open: true, inMs: 10 });
  assert.deepEqual(gate.at(10_004, 100_400, 400), { open: true, inMs: 6 });
  assert.deepEqual(gate.at(10_010, 101_000, 1000), { open: false, inMs: 990 }, 'the budget is kept');
  // The next second plans with what came since the last one began.
  assert.deepEqual(gate.at(11_000, 300_000, 0), { open: true, inMs: 5 });
  assert.deepEqual(gate.at(11_005, 301_000, 900), { open: false, inMs: 995 }, 'the window is over');
  // Never shorter than the reader can time.
  gate.at(12_000, 100_000_000, 0);
  assert.deepEqual(gate.at(13_000, 200_000_000, 0), { open: true, inMs: MIN_CHAIN_WINDOW_MS });
});

test('chain gate: a reader that looks late in the second still gets the whole window, but not past the second', () => {
  const gate = new ChainGate(1000);
  gate.at(9_999, 0, 0);
  assert.deepEqual(gate.at(10_300, 100_000, 0), { open: true, inMs: 10 });
  assert.deepEqual(gate.at(10_310, 101_000, 500), { open: false, inMs: 690 });
  gate.at(11_000, 101_000, 0);
  // 1,000 drops in the last second: the whole second, though only 200 ms of it are left.
  assert.deepEqual(gate.at(12_800, 102_000, 0), { open: true, inMs: 200 });
});

test('chain gate: a window that fell short (drops in bursts) stretches the next; one that reached the budget shrinks it', () => {
  const gate = new ChainGate(1000);
  gate.at(9_999, 0, 0);
  assert.deepEqual(gate.at(10_000, 100_000, 0), { open: true, inMs: 10 });
  gate.at(10_010, 100_000, 250); // the window ends with a quarter of the budget
  assert.deepEqual(gate.at(11_000, 200_000, 0), { open: true, inMs: 40 }, 'four times as long');
  gate.at(11_040, 200_000, 1000);
  assert.deepEqual(gate.at(12_000, 300_000, 0), { open: true, inMs: 20 }, 'half the stretch');
  gate.at(12_020, 300_000, 0); // nothing at all
  assert.deepEqual(gate.at(13_000, 400_000, 0), { open: true, inMs: 10 * MAX_WINDOW_STRETCH }, 'never past the cap');
});

test('chain gate: a second without a look is averaged over the seconds it spans', () => {
  const gate = new ChainGate(100);
  gate.at(1_000, 0, 0);
  // 400 drops over 4 seconds: 100 a second, within the budget, so all of the second.
  assert.deepEqual(gate.at(5_000, 400, 0), { open: true, inMs: 1000 });
});
