// --metrics-labels against the real kernel and a real Prometheus: drops in two namespaces we make (one on its loopback,
// one through a veth pair) are scraped with their netns and device labels; a low --metrics-max-series folds into other;
// drops in a real Podman container and in a Kubernetes node layout are scraped with their container and pod labels.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliRun } from '../helpers/cli.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { KubePod } from '../helpers/kube.js';
import { Netns, vethPair, type VethEnd } from '../helpers/netns.js';
import { canRunPodman, PodmanContainer } from '../helpers/podman.js';
import { ensurePrometheus, PrometheusServer, promtoolCheck } from './prom.js';

const kernelSkip = canRunKernelTests();
let promSkip: string | false = 'not checked';
let sender: Netns | null = null;
let receiver: Netns | null = null;
let veth: VethEnd;

before(() => {
  if (kernelSkip) return;
  promSkip = ensurePrometheus();
  sender = new Netns();
  receiver = new Netns();
  veth = vethPair(sender, receiver)[1];
});
after(() => {
  sender?.delete();
  receiver?.delete();
});

/** The values a namespace's netns label may take: its `ip netns` name once resolved, its inode before. */
const netnsValues = (ns: Netns): string[] => [ns.name, String(statSync(`/run/netns/${ns.name}`).ino)];

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Every dropwatch_drops_total sample of an exposition, its labels as an object. */
function dropSamples(exposition: string): Sample[] {
  const out: Sample[] = [];
  for (const line of exposition.split('\n')) {
    const m = /^dropwatch_drops_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

const gauge = (exposition: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(exposition);
  return m ? Number(m[1]) : undefined;
};

/** Starts dropwatch on the bpf source with metrics and JSON, and Prometheus scraping it; resolves once both run. */
async function start(extra: string[]): Promise<{ run: CliRun; prom: PrometheusServer; url: string }> {
  const run = new CliRun([
    '-b',
    'bpf',
    '-s',
    '-f',
    'json',
    '--metrics',
    '127.0.0.1:0',
    '--filter',
    'reason == NO_SOCKET',
    ...extra,
  ]);
  await run.until(
    'metrics and monitoring',
    () => /Serving Prometheus metrics on \S+/.test(run.stderr) && run.stderr.includes('Kernel monitoring activated.'),
  );
  const url = /Serving Prometheus metrics on (\S+)/.exec(run.stderr)![1]!;
  const prom = new PrometheusServer();
  await prom.start(new URL(url).host, 1);
  return { run, prom, url };
}

/** How many UDP NO_SOCKET drops the JSON summaries so far placed in `inode`. */
function placedIn(stdout: string, inode: number): number {
  let n = 0;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as {
      type: string;
      symbol?: string;
      reason?: string;
      places?: { netns: number | null; count: number }[];
    };
    if (e.type !== 'summary' || e.symbol !== '__udp4_lib_rcv' || e.reason !== 'NO_SOCKET') continue;
    for (const p of e.places ?? []) if (p.netns === inode) n += p.count;
  }
  return n;
}

async function stop(run: CliRun, prom: PrometheusServer): Promise<void> {
  run.kill('SIGTERM');
  const done = await run.done;
  await prom.stop();
  assert.equal(done.code, 0, done.stderr);
}

/** Polls Prometheus until `promql` reaches `atLeast` (or a deadline), then once more after a moment for late counts. */
async function settled(prom: PrometheusServer, promql: string, atLeast: number): Promise<number | null> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && ((await prom.query(promql)) ?? 0) < atLeast) await sleep(300);
  await sleep(1500);
  return prom.query(promql);
}

const UDP = 'job="dropwatch",symbol="__udp4_lib_rcv",reason="NO_SOCKET",origin="software"';

test(
  '--metrics-labels netns,dev on bpf: Prometheus scrapes each namespace and device its own series, exactly',
  { skip: kernelSkip },
  async (t) => {
    if (promSkip) return t.skip(promSkip);
    const { run, prom, url } = await start(['--metrics-labels', 'netns,dev']);
    try {
      const [onLo, overVeth] = [120, 80];
      // The sender's own loopback, then the receiver's end of the veth pair: two namespaces, two devices.
      await sender!.sendUdp('127.0.0.1', onLo);
      await sender!.sendUdp(veth.addr, overVeth);
      const inSender = `sum(dropwatch_drops_total{${UDP},netns=~"${netnsValues(sender!).join('|')}",device="lo"})`;
      const inReceiver = `sum(dropwatch_drops_total{${UDP},netns=~"${netnsValues(receiver!).join('|')}",device="${veth.dev}"})`;
      assert.equal(await settled(prom, inSender, onLo), onLo, `target: ${await prom.targetHealth()}`);
      assert.equal(await settled(prom, inReceiver, overVeth), overVeth);

      const exposition = await (await fetch(url)).text();
      const ours = dropSamples(exposition).filter(
        (s) => netnsValues(sender!).includes(s.labels.netns!) || netnsValues(receiver!).includes(s.labels.netns!),
      );
      console.log(`labelled series of our namespaces: ${JSON.stringify(ours)}`);
      for (const s of ours)
        assert.deepEqual(Object.keys(s.labels).sort(), ['device', 'netns', 'origin', 'reason', 'symbol']);
      assert.equal(gauge(exposition, 'dropwatch_metrics_series_folded'), 0);
      const lint = promtoolCheck(exposition);
      assert.equal(lint.status, 0, lint.output);
    } finally {
      await stop(run, prom);
    }
  },
);

test(
  '--metrics-max-series 1: the second namespace is summed under other, the gauge counts it, nothing is lost',
  { skip: kernelSkip },
  async (t) => {
    if (promSkip) return t.skip(promSkip);
    const { run, prom, url } = await start(['--metrics-labels', 'netns,dev', '--metrics-max-series', '1']);
    try {
      const [first, second] = [60, 90];
      const [senderInode, receiverInode] = [sender!, receiver!].map((ns) => statSync(`/run/netns/${ns.name}`).ino);
      // The sender's drops are counted (printed) before the receiver's begin, so the one series is never the receiver's.
      await sender!.sendUdp('127.0.0.1', first);
      await run.until('the first namespace counted', () => placedIn(run.stdout, senderInode!) >= first);
      await sender!.sendUdp(veth.addr, second);
      await run.until('the second namespace counted', () => placedIn(run.stdout, receiverInode!) >= second);
      const other = `sum(dropwatch_drops_total{${UDP},netns="other",device="other"})`;
      // Other processes' drops may have taken the one series first: then the sender's are folded too.
      const folded = await settled(prom, other, second);
      const exposition = await (await fetch(url)).text();
      const samples = dropSamples(exposition);
      const named = samples.filter((s) => s.labels.netns !== 'other');
      console.log(`series: ${JSON.stringify(samples)}; folded ${gauge(exposition, 'dropwatch_metrics_series_folded')}`);
      assert.ok(named.length <= 1, `at most one series keeps its labels: ${JSON.stringify(named)}`);
      assert.ok(
        samples.every((s) => (s.labels.netns === 'other' ? s.labels.device === 'other' : s.labels.device !== 'other')),
        'every added label of a folded series is other',
      );
      assert.ok(!samples.some((s) => netnsValues(receiver!).includes(s.labels.netns!)), 'the receiver has no series');
      const senderSeries = samples.find((s) => netnsValues(sender!).includes(s.labels.netns!));
      assert.ok(senderSeries === undefined || senderSeries.value === first, JSON.stringify(senderSeries));
      assert.ok((folded ?? 0) >= second + (senderSeries ? 0 : first), `other holds the folded drops: ${folded}`);
      assert.ok((gauge(exposition, 'dropwatch_metrics_series_folded') ?? 0) >= 1);
      assert.ok(((await prom.query('dropwatch_metrics_series_folded{job="dropwatch"}')) ?? 0) >= 1);
      const lint = promtoolCheck(exposition);
      assert.equal(lint.status, 0, lint.output);
    } finally {
      await stop(run, prom);
    }
  },
);

test(
  '--metrics-labels on bpf packet mode: each packet labelled by its namespace and device',
  { skip: kernelSkip },
  async (t) => {
    if (promSkip) return t.skip(promSkip);
    const { run, prom } = await start(['-m', 'packet', '--metrics-labels', 'netns,dev']);
    try {
      const n = 40;
      await sender!.sendUdp(veth.addr, n);
      const inReceiver = `sum(dropwatch_drops_total{${UDP},netns=~"${netnsValues(receiver!).join('|')}",device="${veth.dev}"})`;
      assert.equal(await settled(prom, inReceiver, n), n, `target: ${await prom.targetHealth()}`);
    } finally {
      await stop(run, prom);
    }
  },
);

/** The values a namespace's netns label may take, by inode: the `ip netns` names of that inode (Podman makes some), or it. */
function netnsValuesOf(inode: number): string[] {
  const names = readdirSync('/run/netns').filter((name) => {
    try {
      return statSync(`/run/netns/${name}`).ino === inode;
    } catch {
      return false;
    }
  });
  return [...names, String(inode)];
}

test(
  '--metrics-labels netns,container,pod on bpf: a Podman container by its name, a pod by its container and NS/NAME',
  { skip: kernelSkip || canRunPodman() },
  async (t) => {
    if (promSkip) return t.skip(promSkip);
    const box = new PodmanContainer({ prefix: 'dwmetrics' });
    const pod = await KubePod.start('systemd');
    try {
      const { run, prom, url } = await start(['--metrics-labels', 'netns,container,pod']);
      try {
        const [inBox, inPod] = [70, 50];
        box.sendUdp(inBox);
        await pod.sendUdp(inPod);
        const boxQuery = `sum(dropwatch_drops_total{${UDP},container="${box.name}",pod=""})`;
        const podQuery = `sum(dropwatch_drops_total{${UDP},container="${pod.containerName}",pod="${pod.pod}"})`;
        assert.equal(await settled(prom, boxQuery, inBox), inBox, `target: ${await prom.targetHealth()}`);
        assert.equal(await settled(prom, podQuery, inPod), inPod);

        const samples = dropSamples(await (await fetch(url)).text());
        const boxSeries = samples.filter((s) => s.labels.container === box.name);
        const podSeries = samples.filter((s) => s.labels.pod === pod.pod);
        console.log(`container series: ${JSON.stringify(boxSeries)}; pod series: ${JSON.stringify(podSeries)}`);
        for (const s of boxSeries) {
          assert.deepEqual(Object.keys(s.labels).sort(), ['container', 'netns', 'origin', 'pod', 'reason', 'symbol']);
          assert.ok(netnsValuesOf(box.netns).includes(s.labels.netns!), JSON.stringify(s));
        }
        for (const s of podSeries) assert.equal(s.labels.netns, String(pod.netns), JSON.stringify(s));
        // The container's name, never its ID, once the name is known; no other namespace carries it.
        assert.ok(!samples.some((s) => s.labels.container === box.id.slice(0, 12)), 'named, not by its short ID');
      } finally {
        await stop(run, prom);
      }
    } finally {
      box.remove();
      await pod.remove();
    }
  },
);

test(
  '--metrics-labels on tracefs: one line naming the sources that place drops, exit 1',
  { skip: kernelSkip },
  async () => {
    const run = new CliRun([
      '-b',
      'tracefs',
      '-l',
      'none',
      '-s',
      '--metrics',
      '127.0.0.1:0',
      '--metrics-labels',
      'netns',
    ]);
    run.end();
    const done = await run.done;
    assert.equal(done.code, 1, done.stderr);
    assert.equal(
      done.stderr,
      'dropwatch: --metrics-labels: the tracefs backend does not say where drops happen (network namespace, device) in summary mode; ' +
        'the netdm backend does in packet mode (-b netdm -m packet); the bpf backend does (-b bpf)\n',
    );
  },
);
