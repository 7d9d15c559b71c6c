// Filters on container and pod read the task's cgroup too: a drop whose namespace names no container (a container on
// the host's network) is matched by the container its task's cgroup names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordFromPacket, recordFromSummary, type NamesOf } from '../../src/filter/evaluate.js';
import type { SummaryEntry } from '../../src/backend/types.js';

const HOST = 4026531840;
const names: NamesOf = (netns, cgroup) =>
  cgroup === 519
    ? { container: 'c0ffee', containerName: 'web', pod: null }
    : { container: null, containerName: null, pod: netns === HOST ? null : 'other/pod' };

test("a place's and a packet's cgroup reach the names a filter reads", () => {
  const entry: SummaryEntry = { origin: 'software', pc: 1n, reason: 'NETFILTER_DROP', count: 1 };
  const place = { netns: HOST, ifindex: null, ifname: null, pid: 42, comm: 'nc', cgroup: 519, count: 1 };
  assert.equal(recordFromSummary(entry, null, place, names).containerName, 'web');
  assert.equal(recordFromSummary(entry, null, { ...place, cgroup: null }, names).containerName, null);
  const packet = { origin: 'software' as const, netns: HOST, pid: 42, cgroup: 519 };
  assert.equal(recordFromPacket(packet, null, names).container, 'c0ffee');
});
