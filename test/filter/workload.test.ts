// The workload fields of the filter: netns, container, pod, comm and dev (an alias of ifname), parsed, evaluated with
// names from an in-memory WorkloadNames, and a summary entry split to the places that match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compile,
  format,
  parse,
  recordFromPacket,
  recordFromSummary,
  selectPlaces,
  type Expr,
} from '../../src/filter/index.js';
import type { DropPlace, SummaryEntry } from '../../src/backend/types.js';
import { BLUE, CART, HOST, memoryWorkloadNames, SAMPLE, WEB, WEB_ID } from '../helpers/workload.js';

const names = memoryWorkloadNames(SAMPLE);
const lookup = (netns: number) => names.lookup(netns);

test('parse: netns is a number, container, pod and comm are names, dev is ifname', () => {
  assert.deepEqual(parse('netns == 4026532042'), { type: 'cmp', field: 'netns', op: '==', value: 4026532042 });
  assert.deepEqual(parse('container == web'), { type: 'cmp', field: 'container', op: '==', value: 'web' });
  // An ID prefix may start with a digit; it stays the text typed.
  assert.deepEqual(parse('container != 1a2b3c'), { type: 'cmp', field: 'container', op: '!=', value: '1a2b3c' });
  assert.deepEqual(parse('container == 123456'), { type: 'cmp', field: 'container', op: '==', value: '123456' });
  assert.deepEqual(parse('pod == shop/cart-7d9f'), { type: 'cmp', field: 'pod', op: '==', value: 'shop/cart-7d9f' });
  assert.deepEqual(parse('comm == "kworker/0:1"'), { type: 'cmp', field: 'comm', op: '==', value: 'kworker/0:1' });
  assert.deepEqual(parse('dev == eth0'), { type: 'cmp', field: 'ifname', op: '==', value: 'eth0' });
  assert.deepEqual(parse('comm =~ /^node/'), { type: 'match', field: 'comm', op: '=~', pattern: '^node', flags: '' });
  for (const text of ['pod == shop/cart-7d9f', 'netns != 7', 'container =~ /^we/', 'comm == "a b"']) {
    const e: Expr = parse(text);
    assert.deepEqual(parse(format(e)), e, text);
  }
});

test('parse errors name the new fields and keep the old wording for numbers', () => {
  assert.throws(() => parse('netns == blue'), /'netns' needs a number, found 'blue'/);
  assert.throws(() => parse('netns == 12ab'), /bad number '12ab'/);
  assert.throws(() => parse('netns == 4294967296'), /'netns' must be 0 to 4294967295/);
  assert.throws(() => parse('reason == 12ab'), /'reason' needs a name, found number '12ab'/);
  assert.throws(() => parse('foo == 1'), /\(fields: .*, netns, container, pod, comm, dev\)/);
  assert.throws(() => parse('netns =~ /1/'), /'=~' needs a text field \(.*container, pod, comm\), not 'netns'/);
});

const place = (netns: number | null, ifname: string | null, count: number, comm?: string): DropPlace => ({
  netns,
  ifindex: ifname === null ? null : 2,
  ifname,
  count,
  ...(comm === undefined ? {} : { pid: 42, comm }),
});

const entry: SummaryEntry = {
  origin: 'software',
  pc: 0xffffffff81000000n,
  reason: 'NO_SOCKET',
  count: 10,
  places: [place(HOST, 'eth0', 1), place(BLUE, 'veth1', 2), place(WEB, 'eth0', 3, 'nginx'), place(CART, 'eth0', 4)],
};

/** The entry's part that `text` keeps, with names. */
function keep(text: string, e: SummaryEntry = entry): SummaryEntry | null {
  const test = compile(parse(text));
  return selectPlaces(e, (p) => test(recordFromSummary(e, '__udp4_lib_rcv', p, lookup)));
}

test('a summary entry is split: only the matching places pass, with their counts', () => {
  assert.deepEqual(keep(`netns == ${BLUE}`), { ...entry, count: 2, places: [entry.places![1]] });
  assert.deepEqual(
    keep('dev == eth0')?.places?.map((p) => p.netns),
    [HOST, WEB, CART],
  );
  assert.equal(keep('dev == eth0')?.count, 8);
  assert.equal(keep('container == web')?.count, 3);
  assert.equal(keep(`container == ${WEB_ID.slice(0, 12)}`)?.count, 3, 'an ID prefix');
  assert.equal(keep('container == 1A2B3C')?.count, 3, 'an ID prefix in capitals');
  assert.equal(keep('container == eb')?.count, undefined, 'a name is whole, never a prefix');
  assert.equal(keep('container =~ /^ca/')?.count, 4);
  assert.equal(keep('pod == shop/cart-7d9f')?.count, 4);
  assert.equal(keep('container != web')?.count, 7, 'no container is not web');
  assert.equal(keep('comm == nginx')?.count, 3);
  assert.equal(keep('comm != nginx')?.count, 7);
  assert.equal(keep('reason == NO_SOCKET'), entry, 'every place passes: the entry itself');
  assert.equal(keep('netns == 1'), null);
});

test('drops the places do not account for are tested as drops without a place', () => {
  const short: SummaryEntry = { ...entry, count: 12 };
  assert.equal(keep('netns != 1', short), short);
  assert.equal(keep(`netns == ${HOST}`, short)?.count, 1);
  assert.equal(keep('container != web', short)?.count, 9);
  const bare: SummaryEntry = { origin: 'software', pc: 1n, reason: null, count: 5 };
  assert.equal(keep('netns != 1', bare), bare);
  assert.equal(keep('netns == 1', bare), null);
});

test('without names (a run that resolves none) container and pod are missing: == never matches, != always does', () => {
  const test = compile(parse('container == web || pod == shop/cart-7d9f'));
  const r = recordFromSummary(entry, null, entry.places![2], null);
  assert.equal(r.netns, WEB);
  assert.equal(test(r), false);
  assert.equal(compile(parse('container != web'))(r), true);
});

test('a packet carries its namespace and task', () => {
  const packet = { origin: 'software' as const, pc: 1n, netns: WEB, comm: 'curl', pid: 7 };
  assert.equal(compile(parse('container == web && comm == curl'))(recordFromPacket(packet, null, lookup)), true);
  assert.equal(compile(parse(`netns == ${WEB}`))(recordFromPacket(packet, null)), true);
  assert.equal(compile(parse('netns == 1'))(recordFromPacket({ origin: 'software' as const }, null)), false);
});
