// Naming where drops happen, on the real kernel with the bpf source: two network namespaces this test makes, joined by
// a veth pair; the built CLI's lines grouped by namespace and device, and its filters on a device and a namespace,
// checked against the namespaces' inodes (stat -L -c %i /run/netns/NAME) and `ip link`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns, vethPair, type VethEnd } from '../helpers/netns.js';
import { CliRun, countDrops, runCli } from '../helpers/cli.js';
import { validateEvent } from '../helpers/schema.js';

const skip = canRunKernelTests();

interface Place {
  netns: number | null;
  netnsName: string | null;
  container: string | null;
  ifindex: number | null;
  ifname: string | null;
  count: number;
}
interface Summary {
  type: string;
  count: number;
  symbol: string | null;
  reason: string | null;
  places?: Place[];
}

/**
 * `N drops · reason R netns X dev D` lines: the drops of each (reason, namespace, device), the namespace read back as
 * its inode. A fresh namespace drops a few packets of its own (IPv6 neighbour discovery on a new link), for other
 * reasons.
 */
function byNetnsDev(stdout: string, reason: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    // The namespace is its inode, or a name with the inode after it; the host is `host`.
    const m = /^(\d+) drops · reason (\S+) netns (?:\S+ \()?(\d+|host|-)\)? dev (\S+)$/.exec(line);
    if (!m || m[2] !== reason) continue;
    const key = `${m[3]} ${m[4]}`;
    sums.set(key, (sums.get(key) ?? 0) + Number(m[1]));
  }
  return sums;
}

describe('workload names on the bpf source', { skip }, () => {
  let sender: Netns;
  let receiver: Netns;
  let far: VethEnd;
  let senderInode: number;
  let receiverInode: number;

  before(() => {
    sender = new Netns();
    receiver = new Netns();
    [, far] = vethPair(sender, receiver);
    senderInode = Number(execFileSync('stat', ['-L', '-c', '%i', `/run/netns/${sender.name}`], { encoding: 'utf8' }));
    receiverInode = statSync(`/run/netns/${receiver.name}`).ino;
  });
  after(() => {
    sender.delete();
    receiver.delete();
  });

  test('--by reason,netns,dev, --filter on a device and on a namespace: each side of the veth pair counted apart, exactly', async () => {
    const [n, m] = [300, 200];
    const grouped = new CliRun(['-b', 'bpf', '-s', '--by', 'reason,netns,dev']);
    const byDev = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', `dev == ${far.dev}`]);
    const byNetns = new CliRun(['-b', 'bpf', '-s', '--filter', `netns == ${senderInode}`]);
    const runs = [grouped, byDev, byNetns];
    await Promise.all(runs.map((r) => r.monitoring()));
    // Across the pair: dropped in the receiver, on its end. On the sender's own loopback: dropped there, on lo.
    await sender.sendUdp(far.addr, n);
    await sender.sendUdp('127.0.0.1', m);
    await sleep(1500);
    for (const r of runs) r.kill('SIGINT');
    const [g, d, f] = await Promise.all([grouped.done, byDev.done, byNetns.done]);
    for (const r of [g, d, f]) assert.equal(r.code, 0, r.stderr);

    const sums = byNetnsDev(g.stdout, 'NO_SOCKET');
    assert.equal(sums.get(`${receiverInode} ${far.dev}`), n, g.stdout);
    assert.equal(sums.get(`${senderInode} lo`), m, g.stdout);
    assert.doesNotMatch(g.stdout, / at /, 'no location on lines grouped without it');

    let ours = 0;
    for (const line of d.stdout.split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as Summary;
      assert.deepEqual(validateEvent(e), [], line);
      if (e.type !== 'summary') continue;
      assert.equal(
        e.places!.reduce((sum, p) => sum + p.count, 0),
        e.count,
        'only the matching places, and their counts',
      );
      for (const p of e.places!) {
        assert.deepEqual([p.ifname, p.ifindex, p.netns], [far.dev, far.ifindex, receiverInode], line);
        // The namespace existed before the run, so the resolver's first scan named it: its `ip netns` name.
        assert.equal(p.netnsName, receiver.name, line);
        assert.equal(p.container, null);
      }
      if (e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET') ours += e.count;
    }
    assert.equal(ours, n);

    assert.equal(countDrops(f.stdout, '__udp4_lib_rcv', 'NO_SOCKET'), m, f.stdout);
  });

  test('keys and fields a source cannot know are refused in one line, naming bpf', async () => {
    const by = await runCli(['-b', 'tracefs', '-s', '-d', '1', '--by', 'netns,dev']);
    assert.equal(by.code, 1);
    assert.equal(
      by.stderr,
      'dropwatch: --by: netns and dev are not known on the tracefs backend in summary mode (use -b bpf)\n',
    );
    const filter = await runCli(['-b', 'tracefs', '-s', '-d', '1', '--filter', 'container == web']);
    assert.equal(filter.code, 1);
    assert.equal(filter.stderr, 'dropwatch: --filter: container is not known on the tracefs backend (use -b bpf)\n');
  });
});
