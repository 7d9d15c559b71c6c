// The view counts what the JSON output reports: one session, the JSON sink and the view side by side, same drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Session } from '../../src/engine/session.js';
import { DropAggregator } from '../../src/aggregate/index.js';
import { chooseSink } from '../../src/output/sink.js';
import { TopController } from '../../src/top/controller.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { memoryBackend } from '../helpers/backend.js';

const entry = fc.record({
  pc: fc.bigInt({ min: 1n, max: 12n }),
  count: fc.integer({ min: 1, max: 1000 }),
  reason: fc.constantFrom('NO_SOCKET', 'NETFILTER_DROP', null),
});

test('per site and in total, the view’s counts equal the JSON Lines output’s, overflow and losses included', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(fc.array(entry, { maxLength: 6 }), { maxLength: 4 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 8 }),
      async (intervals, maxKeys) => {
        const backend = memoryBackend();
        const json: string[] = [];
        const symbols = { lookup: () => ({ symbol: 'fn', offset: 0n }), ready: async () => {}, missing: () => null };
        const sink = await chooseSink(
          { format: 'json', timestamp: false, metrics: null },
          {
            backend,
            sources: [],
            symbols,
            now: () => 0,
            data: (l) => json.push(l),
            colour: false,
            monitoring: () => true,
            version: 'test',
          },
        );
        let tick: () => void = () => {};
        const session = new Session({
          backend,
          renderer: sink.renderer,
          aggregator: new DropAggregator({ maxKeys }),
          output: { data: (l) => json.push(l), message: () => {}, error: () => {} },
          clock: { setInterval: (fn) => (tick = fn), clearInterval: () => {} },
          ...(sink.observer ? { observer: sink.observer } : {}),
        });
        const view = new TopController({
          backend: 'tracefs',
          capabilities: backend.capabilities,
          label: (d) => `fn+${d.pc}`,
          now: () => 0,
        });
        await session.run({ name: 'start' });
        // The JSON sink writes to stdout; the view reads the session's intervals through its observer, beside it.
        session.divert({
          output: { data: (l) => json.push(l), message: () => {}, error: () => {} },
          observer: view.observer,
        });
        for (const batches of intervals) {
          for (const batch of batches)
            backend.emit({
              kind: 'summary',
              entries: batch.map((e): SummaryEntry => ({ origin: 'software', ...e })),
            });
          backend.emit({ kind: 'lost', count: 1, where: 'cpu0' });
          tick();
        }
        await session.stop('signal');

        const objects = json.map((l) => JSON.parse(l) as { type: string; count?: number; pc?: string; lost?: number });
        const byPc = new Map<string, number>();
        let overflow = 0;
        let lost = 0;
        for (const o of objects) {
          if (o.type === 'summary') byPc.set(o.pc!, (byPc.get(o.pc!) ?? 0) + o.count!);
          if (o.type === 'overflow') overflow += o.count!;
          if (o.type === 'lost') lost += o.lost!;
        }
        const shown = new Map(view.model.rows('total').map((s) => [`0x${s.pc.toString(16)}`, s.total]));
        assert.deepEqual(shown, byPc);
        assert.equal(view.model.overflowTotal, overflow);
        assert.equal(view.model.total, [...byPc.values()].reduce((a, b) => a + b, 0) + overflow);
        assert.equal(view.model.lostTotal, lost);
        const header = view
          .frame({ columns: 200, rows: 30 })
          .lines[1]!.map((s) => s.text)
          .join('');
        assert.match(header, new RegExp(`total ${view.model.total.toLocaleString('en-US')} `));
      },
    ),
    { numRuns: 50 },
  );
});
