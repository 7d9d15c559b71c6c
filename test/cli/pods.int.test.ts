// A Kubernetes node layout without Kubernetes (test/helpers/kube.ts), named by the built CLI on the bpf source: drops
// in the pod's network namespace are printed as `pod NS/NAME` by --by pod, kept alone by --filter 'pod == NS/NAME',
// and carry pod, podUid, container and containerName in JSON; another namespace's drops are never the pod's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { KubePod } from '../helpers/kube.js';
import { Netns } from '../helpers/netns.js';
import { CliRun } from '../helpers/cli.js';
import { validateEvent } from '../helpers/schema.js';

const skip = canRunKernelTests();

interface Place {
  netns: number | null;
  container: string | null;
  containerName: string | null;
  pod: string | null;
  podUid: string | null;
  count: number;
}
interface Summary {
  type: string;
  symbol?: string | null;
  reason?: string | null;
  places?: Place[];
}

/** Every JSON summary line, checked against the schema. */
function summaries(stdout: string): Summary[] {
  const out: Summary[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as Summary;
    assert.deepEqual(validateEvent(e), [], line);
    if (e.type === 'summary') out.push(e);
  }
  return out;
}

/** The UDP NO_SOCKET drops of the summaries' places that `keep` keeps. */
function udpDrops(events: Summary[], keep: (p: Place) => boolean): number {
  let n = 0;
  for (const e of events)
    if (e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET')
      for (const p of e.places ?? []) if (keep(p)) n += p.count;
  return n;
}

/** Sum of `N drops · WORDS` lines whose words are exactly `words`. */
function grouped(stdout: string, words: string): number {
  let sum = 0;
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) drops · (.+)$/.exec(line);
    if (m && m[2] === words) sum += Number(m[1]);
  }
  return sum;
}

describe('a Kubernetes pod named on the bpf source', { skip }, () => {
  let pod: KubePod;
  let other: Netns;

  before(async () => {
    pod = await KubePod.start('systemd');
    other = new Netns();
  });
  after(async () => {
    await pod?.remove();
    other?.delete();
  });

  test('--by pod prints pod NS/NAME, --filter pod == NS/NAME keeps exactly its drops, JSON names it', async () => {
    const [n, m] = [300, 200];
    const byPod = new CliRun(['-b', 'bpf', '-s', '--by', 'pod']);
    const json = new CliRun(['-b', 'bpf', '-s', '-f', 'json']);
    const only = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', `pod == ${pod.pod}`]);
    const onlyText = new CliRun(['-b', 'bpf', '-s', '--filter', `pod == ${pod.pod}`]);
    const runs = [byPod, json, only, onlyText];
    await Promise.all(runs.map((r) => r.monitoring()));
    await Promise.all([pod.sendUdp(n), other.sendUdp('127.0.0.1', m)]);
    await sleep(1500);
    for (const r of runs) r.kill('SIGINT');
    const [t, j, o, ot] = await Promise.all([byPod.done, json.done, only.done, onlyText.done]);
    for (const r of [t, j, o, ot]) assert.equal(r.code, 0, r.stderr);

    assert.ok(grouped(t.stdout, `pod ${pod.pod}`) >= n, t.stdout + t.stderr);
    assert.ok(grouped(t.stdout, `netns ${other.name} (${other.inode})`) >= m, 'the other namespace stands apart');

    const all = summaries(j.stdout);
    const mine = all.flatMap((e) => e.places ?? []).filter((p) => p.netns === pod.netns);
    assert.ok(mine.length > 0, j.stdout + j.stderr);
    for (const p of mine)
      assert.deepEqual(
        [p.pod, p.podUid, p.container, p.containerName],
        [pod.pod, pod.uid, pod.id, pod.containerName],
        JSON.stringify(p),
      );
    assert.equal(
      udpDrops(all, (p) => p.netns === pod.netns),
      n,
    );
    assert.ok(all.flatMap((e) => e.places ?? []).some((p) => p.netns === other.inode && p.pod === null));

    const kept = summaries(o.stdout);
    const keptPlaces = kept.flatMap((e) => e.places ?? []);
    assert.ok(keptPlaces.length > 0, o.stdout + o.stderr);
    for (const p of keptPlaces) assert.equal(p.pod, pod.pod, JSON.stringify(p));
    assert.equal(
      udpDrops(kept, () => true),
      n,
      'exactly the pod’s datagrams',
    );

    // The text lines of the filtered run: dropwatch's own, holding the pod's drops alone.
    let udp = 0;
    for (const line of ot.stdout.split('\n')) {
      const match = /^(\d+) drops at __udp4_lib_rcv\+[0-9a-f]+ \(0x[0-9a-f]+\) \[software\] NO_SOCKET$/.exec(line);
      if (match) udp += Number(match[1]);
    }
    assert.equal(udp, n, ot.stdout);
  });
});
