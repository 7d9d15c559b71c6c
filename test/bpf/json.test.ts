// Summary JSON from the bpf source: each line's places (namespace, device, count) pass the schema, survive the
// per-interval aggregation summed per place, and add up to the line's count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropAggregator } from '../../src/aggregate/index.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { summaryJson } from '../../src/output/json.js';
import { validateEvent } from '../helpers/schema.js';

const entry = (places: SummaryEntry['places']): SummaryEntry => ({
  origin: 'software',
  pc: 0xffffffff8209ec6cn,
  reason: 'NO_SOCKET',
  count: places!.reduce((n, p) => n + p.count, 0),
  places,
});

test('places are summed per namespace and device over an interval and pass the schema', () => {
  const aggregator = new DropAggregator();
  aggregator.add([entry([{ netns: 4026532304, ifindex: 1, ifname: 'lo', count: 3 }])]);
  aggregator.add([
    entry([
      { netns: 4026532304, ifindex: 1, ifname: 'lo', count: 2 },
      { netns: null, ifindex: null, ifname: null, count: 1 },
    ]),
  ]);
  const { lines } = aggregator.flush();
  assert.equal(lines.length, 1);
  const json = summaryJson(lines[0]!, { symbol: '__udp4_lib_rcv', offset: 0x4bcn }, 0, 'bpf');
  assert.equal(json.count, 6);
  // Without a name resolver every name is null.
  const unnamed = { netnsName: null, container: null, containerName: null, pod: null, podUid: null };
  assert.deepEqual(json.places, [
    { netns: 4026532304, ...unnamed, ifindex: 1, ifname: 'lo', count: 5 },
    { netns: null, ...unnamed, ifindex: null, ifname: null, count: 1 },
  ]);
  assert.deepEqual(validateEvent(json), []);
});

test('the schema refuses a place without its fields, and sources without places print none', () => {
  const json = summaryJson(entry([{ netns: 1, ifindex: 1, ifname: 'lo', count: 1 }]), null, 0, 'bpf');
  const bad = { ...json, places: [{ netns: 1, count: 1 }] };
  assert.notDeepEqual(validateEvent(bad), []);
  const plain = summaryJson({ origin: 'software', pc: 1n, reason: null, count: 1 }, null, 0, 'tracefs');
  assert.equal('places' in plain, false);
});
