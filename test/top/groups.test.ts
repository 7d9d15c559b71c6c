// The live view's counts by workload: drops by device, namespace, container or pod and reason, named through the
// workload seam, merged when names arrive, bounded like the sites, and copied for a pause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DropPlace } from '../../src/backend/types.js';
import { HISTORY, TopModel, type SiteDrop } from '../../src/top/model.js';
import { MAX_CELLS, deviceLabel, netnsLabel, workloadLabel, type Group } from '../../src/top/groups.js';
import { memoryWorkloadNames } from '../helpers/workload.js';

const label = (d: SiteDrop) => `f${d.pc.toString(16)}`;
const sw = (pc: bigint, count: number, reason: string | null = 'NO_SOCKET', places?: DropPlace[]): SiteDrop => ({
  origin: 'software',
  pc,
  reason,
  count,
  ...(places ? { places } : {}),
});
const at = (netns: number | null, ifindex: number | null, ifname: string | null, count: number): DropPlace => ({
  netns,
  ifindex,
  ifname,
  count,
});

const NAMES = {
  100: { netnsName: 'host' },
  200: { netnsName: 'blue', pod: 'shop/cart', containerName: 'cart', container: 'abcdef0123456789abcdef' },
  300: { containerName: 'web', container: '0123456789abcdef0123' },
};

/** Two namespaces and a drop with no place: 12 NO_SOCKET and 3 NETFILTER_DROP, over one interval. */
function sample(): TopModel {
  const m = new TopModel({ label });
  m.add([
    sw(1n, 10, 'NO_SOCKET', [at(100, 1, 'lo', 4), at(200, 5, 'eth0', 6)]),
    sw(2n, 3, 'NETFILTER_DROP', [at(200, 5, 'eth0', 3)]),
    sw(3n, 2),
  ]);
  m.tick();
  return m;
}
const labels = (groups: readonly Group[]) => groups.map((g) => `${g.label}=${g.total}`);

test('drops are counted by device, namespace, workload and reason; a drop without a place is still counted', () => {
  const m = sample();
  const names = memoryWorkloadNames(NAMES);
  assert.deepEqual(labels(m.groupRows('device', 'total', names)), ['eth0 in blue=9', 'lo in host=4', '(no device)=2']);
  assert.deepEqual(labels(m.groupRows('netns', 'total', names)), ['blue=9', 'host=4', '(no namespace)=2']);
  assert.deepEqual(labels(m.groupRows('workload', 'total', names)), ['pod shop/cart=9', 'host=4', '(no namespace)=2']);
  assert.deepEqual(labels(m.groupRows('reason', 'total', names)), ['NO_SOCKET=12', 'NETFILTER_DROP=3']);
  for (const by of ['device', 'netns', 'workload', 'reason'] as const) {
    const rows = m.groupRows(by, 'total', names);
    assert.equal(
      rows.reduce((n, g) => n + g.total, 0),
      m.total,
      `${by}: every drop in one row`,
    );
    assert.equal(
      rows.reduce((n, g) => n + g.last, 0),
      m.last,
    );
  }
});

test('without names a namespace is its inode; the view never waits for a name', () => {
  const m = sample();
  assert.deepEqual(labels(m.groupRows('netns', 'total')), ['netns 200=9', 'netns 100=4', '(no namespace)=2']);
  assert.deepEqual(labels(m.groupRows('device', 'total')), [
    'eth0 in netns 200=9',
    'lo in netns 100=4',
    '(no device)=2',
  ]);
  const names = memoryWorkloadNames();
  assert.deepEqual(labels(m.groupRows('workload', 'total', names)), ['netns 200=9', 'netns 100=4', '(no namespace)=2']);
  assert.deepEqual([...new Set(names.asked)].sort(), [100, 200], 'asked about each namespace, not about none');
});

test('a group holds its drop sites and reasons, with their rate and total', () => {
  const m = sample();
  const [blue] = m.groupRows('netns', 'total', memoryWorkloadNames(NAMES));
  const cells = [...blue!.cells.values()].map((c) => `${c.label} ${c.reason} ${c.last}/${c.total}`);
  assert.deepEqual(cells.sort(), ['f1 NO_SOCKET 6/6', 'f2 NETFILTER_DROP 3/3']);
  assert.deepEqual(blue!.netns, [200]);
  const [noSocket] = m.groupRows('reason', 'total');
  assert.deepEqual([...noSocket!.cells.values()].map((c) => `${c.label} ${c.total}`).sort(), ['f1 10', 'f3 2']);
});

test('devices of one namespace merge into its row, history and reasons summed; names found later rename rows', () => {
  const names = memoryWorkloadNames();
  const m = new TopModel({ label });
  m.add([sw(1n, 4, 'NO_SOCKET', [at(300, 2, 'eth0', 4)]), sw(2n, 1, 'NETFILTER_DROP', [at(300, 1, 'lo', 1)])]);
  m.tick();
  m.add([sw(1n, 2, 'NO_SOCKET', [at(300, 2, 'eth0', 2)])]);
  m.tick();
  const [ns] = m.groupRows('netns', 'rate', names);
  assert.equal(ns!.label, 'netns 300');
  assert.equal(ns!.total, 7);
  assert.equal(ns!.last, 2);
  assert.deepEqual(m.recent(ns!, 60), [5, 2]);
  assert.deepEqual([...ns!.reasons].map(([r, c]) => `${r} ${c.total}`).sort(), ['NETFILTER_DROP 1', 'NO_SOCKET 6']);
  names.set(300, NAMES[300]);
  assert.deepEqual(labels(m.groupRows('workload', 'rate', names)), ['container web=7']);
  assert.deepEqual(labels(m.groupRows('device', 'name', names)), ['eth0 in netns 300=6', 'lo in netns 300=1']);
});

test('labels: pod, else container name, else container ID, else the namespace name, else its inode', () => {
  const w = (n: Partial<(typeof NAMES)[200]>) => ({
    netns: 7,
    netnsName: null,
    container: null,
    containerName: null,
    pod: null,
    podUid: null,
    ...n,
  });
  assert.equal(workloadLabel(7, w(NAMES[200])), 'pod shop/cart');
  assert.equal(workloadLabel(7, w({ containerName: 'web', netnsName: 'blue' })), 'container web');
  assert.equal(workloadLabel(7, w({ container: '0123456789abcdef0123' })), 'container 0123456789ab');
  assert.equal(workloadLabel(7, w({ netnsName: 'host' })), 'host');
  assert.equal(workloadLabel(7, w({})), 'netns 7');
  assert.equal(workloadLabel(7, null), 'netns 7');
  assert.equal(workloadLabel(null, null), '(no namespace)');
  assert.equal(netnsLabel(7, w({ netnsName: 'blue', pod: 'a/b' })), 'blue');
  assert.equal(netnsLabel(null, null), '(no namespace)');
  assert.equal(deviceLabel({ netns: 7, ifindex: 3, ifname: 'veth0' }, 'blue'), 'veth0 in blue');
  assert.equal(deviceLabel({ netns: 7, ifindex: 3, ifname: null }, 'blue'), 'ifindex 3 in blue');
  assert.equal(deviceLabel({ netns: 7, ifindex: null, ifname: null }, 'host'), '(no device) in host');
  assert.equal(deviceLabel({ netns: null, ifindex: null, ifname: null }, '(no namespace)'), '(no device)');
});

test('the site cap bounds the groups too: more devices than fit are counted over the cap, quiet ones leave', () => {
  const m = new TopModel({ label, maxSites: 2 });
  m.add([1, 2, 3].map((i) => sw(1n, i, 'NO_SOCKET', [at(i, i, `d${i}`, i)])));
  m.tick();
  assert.equal(m.groupRows('device', 'total').length, 2);
  assert.equal(m.groupOverflow('device'), 3);
  assert.equal(m.groupRows('device', 'total').reduce((n, g) => n + g.total, 0) + m.groupOverflow('device'), m.total);
  for (let i = 0; i < HISTORY; i++) {
    m.add([sw(1n, 1, 'NO_SOCKET', [at(1, 1, 'd1', 1)])]);
    m.tick();
  }
  m.add([sw(1n, 9, 'NO_SOCKET', [at(9, 9, 'd9', 9)])]);
  m.tick();
  assert.deepEqual(
    m.groupRows('device', 'name').map((g) => g.label),
    ['d1 in netns 1', 'd9 in netns 9'],
    'the group quiet for the whole window made room',
  );
});

test('a group keeps at most MAX_CELLS sites and reasons; drops at further ones are summed', () => {
  const m = new TopModel({ label });
  const drops = Array.from({ length: MAX_CELLS + 5 }, (_, i) => sw(BigInt(i + 1), 1, 'NO_SOCKET', [at(1, 1, 'lo', 1)]));
  m.add(drops);
  m.tick();
  const [lo] = m.groupRows('device', 'total');
  assert.equal(lo!.cells.size, MAX_CELLS);
  assert.equal(lo!.other.total, 5);
  assert.equal(lo!.other.last, 5);
  assert.equal(lo!.total, MAX_CELLS + 5);
});

test('an entry whose places fall short of its count: the rest is counted with no device', () => {
  const m = new TopModel({ label });
  m.add([sw(1n, 5, 'NO_SOCKET', [at(1, 1, 'lo', 3)])]);
  m.tick();
  assert.deepEqual(labels(m.groupRows('device', 'total')), ['lo in netns 1=3', '(no device)=2']);
});

test('a paused copy keeps its groups while the live model counts on', () => {
  const m = sample();
  const copy = m.clone();
  m.add([sw(1n, 100, 'NO_SOCKET', [at(100, 1, 'lo', 100)])]);
  m.tick();
  assert.deepEqual(labels(copy.groupRows('netns', 'total')), ['netns 200=9', 'netns 100=4', '(no namespace)=2']);
  assert.deepEqual(labels(m.groupRows('netns', 'total')), ['netns 100=104', 'netns 200=9', '(no namespace)=2']);
  const [lo] = copy.groupRows('device', 'total').filter((g) => g.label.startsWith('lo'));
  assert.equal(lo!.total, 4);
  assert.equal([...lo!.cells.values()][0]!.total, 4);
});
