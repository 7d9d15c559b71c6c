// The task's cgroup of a drop in its own context: JSON carries its id and path (null until found, none invented for
// softirq drops), and a namespace that names no container (a host-network container) takes the cgroup's, in JSON and
// in lines grouped by container; valid against the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupLines } from '../../src/aggregate/group.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { packetJson, summaryJson } from '../../src/output/json.js';
import { formatSummaryLine } from '../../src/output/format.js';
import type { CgroupWorkload } from '../../src/workload/types.js';
import { validateEvent } from '../helpers/schema.js';
import { CART, CART_ID, HOST, memoryWorkloadNames, SAMPLE, WEB_ID } from '../helpers/workload.js';

const names = memoryWorkloadNames(SAMPLE);
const lookup = (netns: number) => names.lookup(netns);
const WEB_CGROUP = 519;
const PLAIN_CGROUP = 600;
const cgroups = (id: number): CgroupWorkload => {
  const none = { id, path: null, container: null, containerName: null, pod: null, podUid: null };
  if (id === WEB_CGROUP)
    return { ...none, path: `/libpod_parent/libpod-${WEB_ID}`, container: WEB_ID, containerName: 'web' };
  if (id === PLAIN_CGROUP) return { ...none, path: '/dropwatch-test' };
  return none;
};

const entry: SummaryEntry = {
  origin: 'software',
  pc: 0xffffffff81c3a0f5n,
  reason: 'NETFILTER_DROP',
  count: 10,
  places: [
    { netns: HOST, ifindex: null, ifname: null, pid: 42, comm: 'nginx', cgroup: WEB_CGROUP, count: 4 },
    { netns: HOST, ifindex: null, ifname: null, pid: 43, comm: 'curl', cgroup: PLAIN_CGROUP, count: 3 },
    { netns: CART, ifindex: null, ifname: null, pid: 44, comm: 'cart', cgroup: WEB_CGROUP, count: 1 },
    { netns: HOST, ifindex: 1, ifname: 'lo', pid: null, comm: null, cgroup: null, count: 2 },
  ],
};

test("summary places: the task's cgroup id and path; a host-network container named by it; none in softirq", () => {
  const json = summaryJson(entry, null, 0, 'bpf', () => null, lookup, cgroups);
  const [web, plain, cart, softirq] = json.places!;
  assert.deepEqual(
    [web!.cgroupId, web!.cgroup, web!.netnsName, web!.container, web!.containerName],
    [WEB_CGROUP, `/libpod_parent/libpod-${WEB_ID}`, 'host', WEB_ID, 'web'],
  );
  assert.deepEqual([plain!.cgroup, plain!.container], ['/dropwatch-test', null]);
  assert.deepEqual([cart!.container, cart!.containerName], [CART_ID, 'cart'], "the namespace's container first");
  assert.deepEqual([softirq!.cgroupId, softirq!.cgroup], [null, null]);
  assert.deepEqual(validateEvent(json), []);
  // Not resolved (yet): the id alone.
  const bare = summaryJson(entry, null, 0, 'bpf', () => null, lookup);
  assert.deepEqual([bare.places![0]!.cgroupId, bare.places![0]!.cgroup, bare.places![0]!.container], [519, null, null]);
});

test('packet: the cgroup at the top, null for a drop in no task', () => {
  const p = packetJson(
    { origin: 'software', pc: 1n, netns: HOST, pid: 42, comm: 'nginx', cgroup: WEB_CGROUP },
    null,
    0,
    'bpf',
    () => null,
    lookup,
    cgroups,
  );
  assert.deepEqual([p.cgroupId, p.cgroup, p.container, p.containerName], [519, p.cgroup, WEB_ID, 'web']);
  assert.equal(p.cgroup, `/libpod_parent/libpod-${WEB_ID}`);
  assert.deepEqual(validateEvent(p), []);
  const softirq = packetJson({ origin: 'software', pc: 1n, netns: HOST }, null, 0, 'bpf', () => null, lookup, cgroups);
  assert.deepEqual([softirq.cgroupId, softirq.cgroup, softirq.container], [null, null, null]);
  assert.deepEqual(validateEvent(softirq), []);
});

test('--by container: a host-network container is named by the cgroup of the task that dropped', () => {
  const { lines } = groupLines([entry], ['container'], lookup, 100, cgroups);
  assert.deepEqual(
    lines.map((l) => [formatSummaryLine(l, null), l.count]),
    [
      [`4 drops · container web (${WEB_ID.slice(0, 12)})`, 4],
      ['5 drops · netns host', 5],
      [`1 drops · container cart (${CART_ID.slice(0, 12)})`, 1],
    ],
  );
});
