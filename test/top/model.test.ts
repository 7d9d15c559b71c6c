// The live view's counts: rates per interval, totals, the minute of history, sorting, the site cap and pause copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HISTORY, TopModel, mainReason, type SiteDrop } from '../../src/top/model.js';

const label = (d: SiteDrop) => (d.origin === 'hardware' ? (d.trap ?? '?') : `f${d.pc.toString(16)}`);
const sw = (pc: bigint, count: number, reason: string | null = 'NO_SOCKET'): SiteDrop => ({
  origin: 'software',
  pc,
  reason,
  count,
});

test('an interval becomes each site’s rate, total and newest history slot', () => {
  const m = new TopModel({ label });
  m.add([sw(1n, 5), sw(2n, 3), sw(1n, 2)]);
  assert.equal(m.get('software\u00001\u0000')?.last, 0, 'nothing counts as the last second before a tick');
  m.tick();
  const a = m.get('software\u00001\u0000')!;
  assert.equal(a.last, 7);
  assert.equal(a.total, 7);
  assert.equal(m.last, 10);
  assert.equal(m.total, 10);
  m.add([sw(2n, 4)]);
  m.tick();
  assert.equal(a.last, 0, 'a quiet second is a rate of 0');
  assert.equal(a.total, 7);
  assert.deepEqual(m.recent(a, 60), [7, 0]);
  assert.deepEqual(m.recent(m.get('software\u00002\u0000')!, 1), [4]);
  assert.equal(m.averageRate(), 7);
});

test('rates are per second whatever the interval', () => {
  const m = new TopModel({ label, intervalMs: 500 });
  m.add([sw(1n, 50)]);
  m.tick();
  assert.equal(m.rate(m.last), 100);
  assert.equal(m.averageRate(), 100);
});

test('sorting: by the last second, by total, by name; ties keep one order', () => {
  const m = new TopModel({ label });
  m.add([sw(0xa1n, 100), sw(0xb2n, 1), sw(0xc3n, 50)]);
  m.tick();
  m.add([sw(0xb2n, 20), sw(0xc3n, 5)]);
  m.tick();
  const names = (sort: 'rate' | 'total' | 'name') => m.rows(sort).map((s) => s.label);
  assert.deepEqual(names('rate'), ['fb2', 'fc3', 'fa1']);
  assert.deepEqual(names('total'), ['fa1', 'fc3', 'fb2']);
  assert.deepEqual(names('name'), ['fa1', 'fb2', 'fc3']);
  const tie = new TopModel({ label: () => 'same' });
  tie.add([sw(2n, 1), sw(1n, 1)]);
  tie.tick();
  assert.deepEqual(
    tie.rows('rate').map((s) => s.pc),
    tie.rows('rate').map((s) => s.pc),
  );
  assert.deepEqual(
    tie.rows('name').map((s) => s.pc),
    [1n, 2n],
  );
});

test('hardware drops are sites of their own, named by their trap', () => {
  const m = new TopModel({ label });
  m.add([
    { origin: 'hardware', pc: 0n, trap: 'ingress_vlan_filter', reason: null, count: 3 },
    { origin: 'hardware', pc: 0n, trap: 'blackhole_route', reason: null, count: 1 },
  ]);
  m.tick();
  assert.deepEqual(
    m.rows('total').map((s) => s.label),
    ['ingress_vlan_filter', 'blackhole_route'],
  );
});

test('a row shows the reason with most drops last second, else most in total', () => {
  const m = new TopModel({ label });
  m.add([sw(1n, 10, 'NO_SOCKET'), sw(1n, 2, 'NETFILTER_DROP')]);
  m.tick();
  const site = m.get('software\u00001\u0000')!;
  assert.equal(mainReason(site), 'NO_SOCKET');
  m.add([sw(1n, 1, 'NETFILTER_DROP')]);
  m.tick();
  assert.equal(mainReason(site), 'NETFILTER_DROP');
  m.tick();
  assert.equal(mainReason(site), 'NO_SOCKET');
});

test('the history keeps the last minute only', () => {
  const m = new TopModel({ label });
  for (let i = 1; i <= HISTORY + 5; i++) {
    m.add([sw(1n, i)]);
    m.tick();
  }
  const recent = m.recent(m.get('software\u00001\u0000')!, 100);
  assert.equal(recent.length, HISTORY);
  assert.equal(recent[0], 6);
  assert.equal(recent.at(-1), HISTORY + 5);
});

test('past the site cap drops are counted as overflow; sites quiet for a minute make room', () => {
  const m = new TopModel({ label, maxSites: 2 });
  m.add([sw(1n, 1), sw(2n, 1), sw(3n, 7)]);
  m.tick();
  assert.equal(m.size, 2);
  assert.equal(m.overflowTotal, 7);
  assert.equal(m.overflowLast, 7);
  assert.equal(m.total, 9);
  for (let i = 0; i < HISTORY; i++) {
    m.add([sw(2n, 1)]);
    m.tick();
  }
  assert.equal(m.size, 1, 'site 1 was quiet for the whole window and left');
  m.add([sw(3n, 4)]);
  m.tick();
  assert.equal(m.get('software\u00003\u0000')?.total, 4);
  assert.equal(m.total, 9 + HISTORY + 4, 'the total keeps every drop, including those of sites that left');
});

test('a clone is a pause: it keeps its counts while the model counts on', () => {
  const m = new TopModel({ label });
  m.add([sw(1n, 5)]);
  m.tick();
  const frozen = m.clone();
  m.add([sw(1n, 5), sw(2n, 1)]);
  m.tick();
  assert.equal(frozen.total, 5);
  assert.equal(frozen.size, 1);
  assert.deepEqual(frozen.recent(frozen.get('software\u00001\u0000')!, 60), [5]);
  assert.equal(m.total, 11);
});

test('property: every drop added is in exactly one place: a site or the overflow', () => {
  const drop = fc.record({
    pc: fc.bigInt({ min: 1n, max: 40n }),
    count: fc.nat({ max: 1000 }),
    reason: fc.constantFrom('NO_SOCKET', 'NETFILTER_DROP', null),
  });
  fc.assert(
    fc.property(
      fc.array(fc.array(drop, { maxLength: 30 }), { maxLength: HISTORY }),
      fc.integer({ min: 1, max: 50 }),
      (intervals, max) => {
        const m = new TopModel({ label, maxSites: max });
        let sent = 0;
        for (const batch of intervals) {
          m.add(batch.map((d) => sw(d.pc, d.count, d.reason)));
          m.tick();
          sent += batch.reduce((a, d) => a + d.count, 0);
        }
        const inSites = m.rows('total').reduce((a, s) => a + s.total, 0);
        assert.ok(m.size <= max);
        assert.equal(m.total, sent);
        // Within a minute no site can have left, so the sites and the overflow hold every drop between them.
        assert.equal(inSites + m.overflowTotal, sent);
        for (const s of m.rows('rate'))
          assert.equal(
            [...s.reasons.values()].reduce((a, r) => a + r.total, 0),
            s.total,
          );
      },
    ),
  );
});
