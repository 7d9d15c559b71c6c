// The session with a full-screen view: each interval's aggregated lines reach observers, and a diverted session
// sends its lines and drops to the view until the view gives them back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../../src/engine/session.js';
import type { DropObserver, Renderer } from '../../src/engine/types.js';
import { DropAggregator, type FlushResult } from '../../src/aggregate/index.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { memoryBackend } from '../helpers/backend.js';

const renderer: Renderer = {
  summary: (e) => `${e.count} at ${e.pc}`,
  packet: () => ['packet'],
  config: () => [],
  stats: () => [],
  overflow: (o) => `overflow ${o.drops}`,
  lost: (n, where) => `lost ${n} ${where}`,
  lostTotal: (n, where) => `in total lost ${n} ${where}`,
};

const entry = (pc: bigint, count: number): SummaryEntry => ({ origin: 'software', pc, reason: 'NO_SOCKET', count });

function setup(observer?: DropObserver, view?: () => Promise<void>) {
  const b = memoryBackend();
  const printed: string[] = [];
  let tick: () => void = () => {};
  const session = new Session({
    backend: b,
    renderer,
    aggregator: new DropAggregator({ maxKeys: 2 }),
    output: {
      data: (l) => printed.push(`data ${l}`),
      message: (l) => printed.push(`message ${l}`),
      error: (l) => printed.push(`error ${l}`),
    },
    clock: { setInterval: (fn) => (tick = fn), clearInterval: () => {} },
    ...(observer ? { observer } : {}),
    ...(view ? { view } : {}),
  });
  return { b, session, printed, tick: () => tick() };
}

test('observers get every interval, empty ones too, with exactly the lines the output prints', async () => {
  const intervals: FlushResult[] = [];
  const { b, session, printed, tick } = setup({ interval: (r) => intervals.push(r) });
  await session.run({ name: 'start' });
  b.emit({ kind: 'summary', entries: [entry(1n, 2), entry(2n, 3), entry(1n, 1), entry(3n, 4)] });
  tick();
  tick();
  assert.equal(intervals.length, 2);
  assert.deepEqual(
    intervals[0]!.lines.map((l) => [l.pc, l.count]),
    [
      [1n, 3],
      [2n, 3],
    ],
  );
  assert.equal(intervals[0]!.overflow?.drops, 4);
  assert.deepEqual(intervals[1], { lines: [], overflow: null });
  assert.deepEqual(
    printed.filter((l) => l.startsWith('data')),
    ['data 3 at 1', 'data 3 at 2'],
  );
});

test('a diverted session writes to the view and feeds its observer; undivert gives both back', async () => {
  const mine: string[] = [];
  const { b, session, printed, tick } = setup({ lost: (n) => mine.push(`metrics lost ${n}`) });
  const seen: string[] = [];
  const view = {
    output: {
      data: (l: string) => seen.push(`data ${l}`),
      message: (l: string) => seen.push(`message ${l}`),
      error: (l: string) => seen.push(`error ${l}`),
    },
    observer: {
      interval: (r: FlushResult) => seen.push(`interval ${r.lines.length}`),
      lost: (n: number) => seen.push(`view lost ${n}`),
    },
  };
  const undivert = session.divert(view);
  await session.run({ name: 'start' });
  b.emit({ kind: 'summary', entries: [entry(1n, 5)] });
  b.emit({ kind: 'lost', count: 2, where: 'cpu0' });
  tick();
  undivert();
  b.emit({ kind: 'summary', entries: [entry(1n, 1)] });
  tick();
  assert.deepEqual(seen, [
    'message Enabling monitoring...',
    'message Kernel monitoring activated.',
    'message Issue Ctrl-C to stop monitoring',
    'view lost 2',
    'error lost 2 cpu0',
    'interval 1',
    'data 5 at 1',
  ]);
  assert.deepEqual(printed, ['data 1 at 1']);
  assert.deepEqual(mine, ['metrics lost 2'], 'the sink’s own observer keeps counting while diverted');
  undivert();
  assert.deepEqual(printed, ['data 1 at 1'], 'undivert twice is harmless');
});

test('`top` runs the view the CLI gave; without one it says so', async () => {
  let ran = 0;
  const withView = setup(undefined, async () => {
    ran++;
  });
  assert.equal(await withView.session.run({ name: 'top' }), 'continue');
  assert.equal(ran, 1);
  const without = setup();
  await without.session.run({ name: 'top' });
  assert.deepEqual(without.printed, ['error the live view is not available here']);
});
