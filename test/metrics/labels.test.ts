// The opt-in workload labels as values: parsing --metrics-labels, the values a place and its workload give, the fold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropwatchError } from '../../src/errors/index.js';
import {
  DEFAULT_MAX_SERIES,
  labelNames,
  labelValues,
  parseMetricsLabels,
  placesOf,
  SeriesFold,
} from '../../src/metrics/labels.js';
import { memoryWorkloadNames } from '../helpers/workload.js';

const HOST = 4026531840;
const BLUE = 4026532301;
const POD = 4026532555;
const BARE = 4026532777;
const names = memoryWorkloadNames({
  [HOST]: { netnsName: 'host' },
  [BLUE]: { netnsName: 'blue' },
  [POD]: {
    container: '3f2a9c81d4e5b6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1',
    containerName: 'cart',
    pod: 'shop/cart-7d9f',
    podUid: '11111111-2222-3333-4444-555555555555',
  },
  [BARE]: { container: 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789' },
});

test('--metrics-labels: any subset in a fixed order, duplicates once; dev is exported as device', () => {
  assert.deepEqual(parseMetricsLabels('netns'), ['netns']);
  assert.deepEqual(parseMetricsLabels('dev,netns'), ['netns', 'dev']);
  assert.deepEqual(parseMetricsLabels('pod, container ,netns,dev,pod'), ['netns', 'container', 'pod', 'dev']);
  assert.deepEqual(labelNames(['netns', 'container', 'pod', 'dev']), ['netns', 'container', 'pod', 'device']);
  assert.equal(DEFAULT_MAX_SERIES, 500);
});

test('--metrics-labels: a name it does not know, or none, is one line listing the names', () => {
  for (const [text, said] of [
    ['netns,device', 'unknown metrics label device (use netns, container, pod or dev)'],
    ['comm', 'unknown metrics label comm (use netns, container, pod or dev)'],
    ['', 'unknown metrics label "" (use netns, container, pod or dev)'],
    ['netns,,dev', 'unknown metrics label "" (use netns, container, pod or dev)'],
  ] as const)
    assert.throws(
      () => parseMetricsLabels(text),
      (err: unknown) =>
        err instanceof DropwatchError && err.code === 'E_USAGE' && err.exitCode === 1 && err.message === said,
      text,
    );
});

test('label values: the ip netns name, host, else the inode; the container name, else its short ID; the pod', () => {
  const all = ['netns', 'container', 'pod', 'dev'] as const;
  assert.deepEqual(labelValues(all, { netns: HOST, ifname: 'eth0' }, names), ['host', '', '', 'eth0']);
  assert.deepEqual(labelValues(all, { netns: BLUE, ifname: 'veth1' }, names), ['blue', '', '', 'veth1']);
  assert.deepEqual(labelValues(all, { netns: POD, ifname: 'eth0' }, names), [
    String(POD),
    'cart',
    'shop/cart-7d9f',
    'eth0',
  ]);
  assert.deepEqual(labelValues(all, { netns: BARE, ifname: null }, names), [String(BARE), 'abcdef012345', '', '']);
  // Not named yet: its inode, so the count is kept and a later scrape names it.
  assert.deepEqual(labelValues(all, { netns: 4026532999, ifname: 'lo' }, names), ['4026532999', '', '', 'lo']);
  // No device and no socket: nothing is known, and nothing is asked.
  const before = names.asked.length;
  assert.deepEqual(labelValues(all, { netns: null, ifname: null }, names), ['', '', '', '']);
  assert.equal(names.asked.length, before);
  // Only what was asked for, in the asked order.
  assert.deepEqual(labelValues(['dev'], { netns: POD, ifname: 'eth0' }, names), ['eth0']);
  assert.deepEqual(labelValues(['netns', 'pod'], { netns: POD, ifname: 'eth0' }, names), [
    String(POD),
    'shop/cart-7d9f',
  ]);
});

test("placesOf: a summary entry's places, and what they leave of its count as a place nobody knows", () => {
  const places = [
    { netns: BLUE, ifindex: 3, ifname: 'veth1', count: 4 },
    { netns: null, ifindex: null, ifname: null, count: 1 },
  ];
  assert.deepEqual(placesOf({ origin: 'software', pc: 1n, reason: null, count: 5, places }), [
    { netns: BLUE, ifname: 'veth1', count: 4 },
    { netns: null, ifname: null, count: 1 },
  ]);
  assert.deepEqual(placesOf({ origin: 'software', pc: 1n, reason: null, count: 7, places }), [
    { netns: BLUE, ifname: 'veth1', count: 4 },
    { netns: null, ifname: null, count: 1 },
    { netns: null, ifname: null, count: 2 },
  ]);
  assert.deepEqual(placesOf({ origin: 'software', pc: 1n, reason: null, count: 3 }), [
    { netns: null, ifname: null, count: 3 },
  ]);
  assert.deepEqual(placesOf({ origin: 'software', pc: 1n, reason: null, count: 0 }), []);
});

test('SeriesFold: the first N label sets keep their labels, later ones are folded into other and counted once', () => {
  const fold = new SeriesFold(2);
  const base = ['__udp4_lib_rcv', 'NO_SOCKET', 'software'];
  assert.deepEqual(fold.admit(base, ['blue', 'veth1']), ['blue', 'veth1']);
  assert.deepEqual(fold.admit(base, ['red', 'veth2']), ['red', 'veth2']);
  assert.deepEqual(fold.admit(base, ['blue', 'veth1']), ['blue', 'veth1'], 'an admitted set stays admitted');
  assert.deepEqual(fold.admit(base, ['green', 'veth3']), ['other', 'other']);
  assert.deepEqual(fold.admit(['nf_hook_slow', 'NETFILTER_DROP', 'software'], ['blue', 'veth1']), ['other', 'other']);
  assert.deepEqual(fold.admit(base, ['green', 'veth3']), ['other', 'other']);
  assert.equal(fold.folded, 2, 'two label sets were folded, however often they came');
  assert.equal(fold.admitted, 2);
});

test('SeriesFold: 0 folds everything; what it remembers of folded sets is bounded, and the gauge says at least', () => {
  const none = new SeriesFold(0);
  assert.deepEqual(none.admit(['a'], ['x']), ['other']);
  assert.equal(none.folded, 1);
  const fold = new SeriesFold(1, 3);
  fold.admit(['a'], ['0']);
  for (let i = 1; i <= 10; i++) fold.admit(['a'], [String(i)]);
  assert.equal(fold.admitted, 1);
  assert.equal(fold.folded, 3, 'a lower bound once more came than it remembers');
});

test('SeriesFold: counts summed through it stay exact in total, whatever the fold', () => {
  const fold = new SeriesFold(5);
  const series = new Map<string, number>();
  let sent = 0;
  for (let i = 0; i < 200; i++) {
    const count = (i * 7) % 13;
    sent += count;
    const added = fold.admit(['s', i % 2 ? 'A' : 'B', 'software'], [String(i % 17), `eth${i % 3}`]);
    const key = `${i % 2}|${added.join('|')}`;
    series.set(key, (series.get(key) ?? 0) + count);
  }
  assert.equal(
    [...series.values()].reduce((a, b) => a + b, 0),
    sent,
  );
  assert.equal([...series.keys()].filter((k) => !k.endsWith('other|other')).length, 5);
});
