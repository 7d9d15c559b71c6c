// The pure parts of call-chain sampling: the per-second budget, chains trimmed to the drops counted with them, and
// finding the packet a chain instance's drop belongs to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChainBudget, chainsWithinCounts } from '../../src/tracefs/reader-counts.js';
import { PendingPackets } from '../../src/tracefs/reader-packets.js';
import type { ChainRow, SummaryRow } from '../../src/tracefs/reader-protocol.js';

const S = 1_000_000_000n;

test('chain budget: at most `budget` a second of drop time; a late record of a past second counts against the current', () => {
  const budget = new ChainBudget(2);
  assert.deepEqual(
    [5n * S, 5n * S + 1n, 5n * S + 2n].map((t) => budget.allow(t)),
    [true, true, false],
  );
  assert.equal(budget.keptIn(5), 2);
  assert.equal(budget.allow(6n * S), true);
  assert.equal(budget.allow(5n * S + 9n), true, 'counted in second 6');
  assert.equal(budget.allow(6n * S + 1n), false);
  assert.equal(budget.keptIn(6), 2);
  assert.equal(budget.keptIn(7), 0, 'a second not reached yet');
});

test('chains within counts: samples per (location, reason) never exceed the drops counted in the same take', () => {
  const callers = (n: number) => BigUint64Array.of(BigInt(n));
  const rows: SummaryRow[] = [
    [0, 10, 3, 5],
    [0, 20, 3, 1],
  ];
  const chains: ChainRow[] = [
    [0, 10, 3, 3, callers(1)],
    [0, 10, 3, 4, callers(2)],
    [0, 20, 3, 2, callers(3)],
    [0, 30, 3, 1, callers(4)],
  ];
  assert.deepEqual(chainsWithinCounts(rows, chains), [
    [0, 10, 3, 3, callers(1)],
    [0, 10, 3, 2, callers(2)],
    [0, 20, 3, 1, callers(3)],
  ]);
  assert.equal(chainsWithinCounts(null, chains), null, 'no drops counted: no chain stands for one');
  assert.equal(chainsWithinCounts(rows, null), null);
});

test('findDrop: the same CPU, location, reason and task, nearest in time within the window', () => {
  const p = new PendingPackets(16);
  const push = (cpu: number, ts: bigint, loc: bigint, pid = 7) => {
    assert.ok(p.makeRoom());
    p.push(cpu, ts, loc, 3, 0x800, pid);
  };
  push(0, 1_000n, 0xaan);
  push(0, 1_500n, 0xaan);
  push(1, 1_510n, 0xaan);
  push(0, 2_000n, 0xbbn);
  push(1, 9_000n, 0xaan); // a later record of the other CPU does not hide CPU 0's
  assert.equal(p.findDrop(0, 1_520n, 0xaan, 3, 7, 100n), 1, 'nearest on the same CPU');
  assert.equal(p.findDrop(1, 1_500n, 0xaan, 3, 7, 100n), 2);
  assert.equal(p.findDrop(0, 1_990n, 0xaan, 3, 7, 100n), -1, 'no record of that location near that time');
  assert.equal(p.findDrop(0, 1_520n, 0xaan, 3, 8, 100n), -1, 'another task');
  assert.equal(p.findDrop(0, 1_480n, 0xaan, 3, 7, 100n), 1, 'recorded a moment after the chain instance');
  p.take();
  assert.equal(p.findDrop(0, 1_520n, 0xaan, 3, 7, 100n), -1, 'taken packets are gone');
});
