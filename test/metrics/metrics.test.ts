// Metrics without a kernel: label mapping (symbol only, never an address), loss counters, the gauge, the HTTP endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createDropMetrics, serveMetrics } from '../../src/metrics/index.js';
import { DropwatchError } from '../../src/errors/index.js';
import { PROMTOOL, promtoolCheck } from './prom.js';
import { memoryWorkloadNames } from '../helpers/workload.js';

function metrics(monitoring = true) {
  return createDropMetrics({
    backend: 'tracefs',
    monitoring: () => monitoring,
    lookup: (pc) => (pc === 0xffffffff820a7f2cn ? { symbol: '__udp4_lib_rcv', offset: 0x4bcn } : null),
    version: '9.9.9',
  });
}

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('drops are counted by symbol, reason and origin; unresolved, hardware and rx_dropped get names, not addresses', async () => {
  const m = metrics();
  m.countSummary([
    { origin: 'software', pc: 0xffffffff820a7f2cn, reason: 'NO_SOCKET', count: 5 },
    { origin: 'software', pc: 0xffffffff820a7f2cn, reason: 'NO_SOCKET', count: 2 },
    { origin: 'software', pc: 0xffffffffc0001234n, reason: null, count: 3 },
    { origin: 'hardware', pc: 0n, trap: 'ttl_value_is_too_small', reason: null, count: 4 },
    { origin: 'software', pc: 0n, reason: null, count: 6 },
  ]);
  m.countPacket({ origin: 'software', pc: 0xffffffff820a7f2cn, reason: 'NO_SOCKET' });
  m.countPacket({
    origin: 'software',
    pc: 0xffffffffc0a01234n,
    symbol: 'nft_do_chain+0x3a5/0x6d0 [nf_tables]',
    reason: 'NETFILTER_DROP',
  });
  m.countPacket({ origin: 'hardware', trapName: 'source_mac_is_multicast', trapGroup: 'l2_drops' });
  m.countLost(12, 'tracefs ring buffer cpu1');
  const text = await m.registry.metrics();
  const drops = (labels: string) => sample(text, `dropwatch_drops_total{${labels}}`);
  assert.equal(drops('symbol="__udp4_lib_rcv",reason="NO_SOCKET",origin="software"'), 8);
  assert.equal(drops('symbol="unknown",reason="unknown",origin="software"'), 3);
  assert.equal(drops('symbol="ttl_value_is_too_small",reason="unknown",origin="hardware"'), 4);
  assert.equal(drops('symbol="device_rx_dropped",reason="unknown",origin="software"'), 6);
  assert.equal(drops('symbol="nft_do_chain",reason="NETFILTER_DROP",origin="software"'), 1);
  assert.equal(drops('symbol="source_mac_is_multicast",reason="unknown",origin="hardware"'), 1);
  assert.equal(sample(text, 'dropwatch_lost_events_total{where="tracefs ring buffer cpu1"}'), 12);
  assert.equal(sample(text, 'dropwatch_monitoring_active'), 1);
  assert.equal(sample(text, 'dropwatch_info{backend="tracefs",version="9.9.9"}'), 1);
  assert.doesNotMatch(text, /0x[0-9a-f]+/);
  if (existsSync(PROMTOOL)) {
    const lint = promtoolCheck(text);
    assert.equal(lint.status, 0, lint.output);
  }
});

test('the gauge is read at scrape time', async () => {
  let on = false;
  const m = createDropMetrics({ backend: 'netdm', monitoring: () => on, lookup: () => null });
  assert.equal(sample(await m.registry.metrics(), 'dropwatch_monitoring_active'), 0);
  on = true;
  assert.equal(sample(await m.registry.metrics(), 'dropwatch_monitoring_active'), 1);
});

test('serveMetrics: /metrics with the exposition content type, 404 elsewhere, 405 for POST, port 0 picks one', async () => {
  const m = metrics();
  const server = await serveMetrics(m.registry, '127.0.0.1', 0);
  try {
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
    const r = await fetch(server.url);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await r.text(), /# TYPE dropwatch_drops_total counter/);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/`)).status, 404);
    assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
    // A second server on the same port: one line, an expected error.
    await assert.rejects(serveMetrics(m.registry, '127.0.0.1', server.port), (err: unknown) => {
      assert.ok(err instanceof DropwatchError);
      assert.equal(err.message, `cannot serve metrics on 127.0.0.1:${server.port}: EADDRINUSE`);
      return true;
    });
  } finally {
    await server.close();
  }
});

/** Every sample of `name` in an exposition, its labels as an object (in any order). */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

const BLUE = 4026532301;
const RED = 4026532302;
const HOST = 4026531840;
const workloads = memoryWorkloadNames({
  [HOST]: { netnsName: 'host' },
  [BLUE]: { netnsName: 'blue' },
  [RED]: { container: 'c0ffee0123456789c0ffee0123456789', containerName: 'cart', pod: 'shop/cart-7d9f' },
});
const UDP = 0xffffffff820a7f2cn;

function labelled(labels: readonly ('netns' | 'container' | 'pod' | 'dev')[], maxSeries?: number) {
  return createDropMetrics({
    backend: 'bpf',
    monitoring: () => true,
    lookup: (pc) => (pc === UDP ? { symbol: '__udp4_lib_rcv', offset: 0x4bcn } : null),
    labels,
    ...(maxSeries === undefined ? {} : { maxSeries }),
    workload: workloads,
  });
}

test('without --metrics-labels the exposition has no workload label and no fold gauge', async () => {
  const m = metrics();
  m.countSummary([
    {
      origin: 'software',
      pc: 0xffffffff820a7f2cn,
      reason: 'NO_SOCKET',
      count: 2,
      places: [{ netns: BLUE, ifindex: 2, ifname: 'veth0', count: 2 }],
    },
  ]);
  const text = await m.registry.metrics();
  assert.deepEqual(
    samples(text, 'dropwatch_drops_total').map((s) => Object.keys(s.labels)),
    [['symbol', 'reason', 'origin']],
  );
  assert.doesNotMatch(text, /series_folded/);
});

test('--metrics-labels netns,container,pod,dev: each place its own series, named by the workload seam', async () => {
  const m = labelled(['netns', 'container', 'pod', 'dev']);
  m.countSummary([
    {
      origin: 'software',
      pc: UDP,
      reason: 'NO_SOCKET',
      count: 10,
      places: [
        { netns: BLUE, ifindex: 4, ifname: 'veth1', count: 3 },
        { netns: RED, ifindex: 2, ifname: 'eth0', count: 4 },
        { netns: 4026532999, ifindex: 1, ifname: 'lo', count: 1 },
        { netns: null, ifindex: null, ifname: null, count: 2 },
      ],
    },
    {
      origin: 'software',
      pc: UDP,
      reason: 'NO_SOCKET',
      count: 5,
      places: [{ netns: BLUE, ifindex: 4, ifname: 'veth1', count: 5 }],
    },
  ]);
  m.countPacket({ origin: 'software', pc: UDP, reason: 'NO_SOCKET', netns: HOST, inPort: { ifindex: 1, name: 'lo' } });
  // NET_DM's packets: a device but no namespace.
  m.countPacket({ origin: 'software', pc: UDP, reason: 'NO_SOCKET', inPort: { ifindex: 7, name: 'eth9' } });
  const text = await m.registry.metrics();
  const got = samples(text, 'dropwatch_drops_total').map(
    (s) => `${s.labels.netns}|${s.labels.container}|${s.labels.pod}|${s.labels.device} ${s.value}`,
  );
  assert.deepEqual(
    got.sort(),
    [
      '4026532999|||lo 1',
      '||| 2',
      '|||eth9 1',
      `${RED}|cart|shop/cart-7d9f|eth0 4`,
      'blue|||veth1 8',
      'host|||lo 1',
    ].sort(),
  );
  for (const s of samples(text, 'dropwatch_drops_total'))
    assert.deepEqual(
      { symbol: s.labels.symbol, reason: s.labels.reason, origin: s.labels.origin },
      { symbol: '__udp4_lib_rcv', reason: 'NO_SOCKET', origin: 'software' },
    );
  assert.deepEqual(samples(text, 'dropwatch_metrics_series_folded'), [{ labels: {}, value: 0 }]);
  if (existsSync(PROMTOOL)) {
    const lint = promtoolCheck(text);
    assert.equal(lint.status, 0, lint.output);
  }
});

test('--metrics-labels dev: places in different namespaces on one device name share a series', async () => {
  const m = labelled(['dev']);
  const asked = workloads.asked.length;
  m.countSummary([
    {
      origin: 'software',
      pc: UDP,
      reason: 'NO_SOCKET',
      count: 5,
      places: [
        { netns: BLUE, ifindex: 1, ifname: 'lo', count: 2 },
        { netns: RED, ifindex: 1, ifname: 'lo', count: 3 },
      ],
    },
  ]);
  const got = samples(await m.registry.metrics(), 'dropwatch_drops_total');
  assert.deepEqual(got, [
    { labels: { symbol: '__udp4_lib_rcv', reason: 'NO_SOCKET', origin: 'software', device: 'lo' }, value: 5 },
  ]);
  assert.equal(workloads.asked.length, asked, 'the device alone needs no workload lookup');
});

test('past --metrics-max-series, new label sets are summed under other and the gauge counts them; totals exact', async () => {
  const m = labelled(['netns', 'dev'], 2);
  const place = (netns: number, ifname: string, count: number) => ({ netns, ifindex: 1, ifname, count });
  let sent = 0;
  for (let round = 0; round < 3; round++) {
    const places = [place(BLUE, 'a', 1), place(RED, 'b', 2), place(HOST, 'c', 3), place(4026532999, 'd', 4)];
    const count = places.reduce((n, p) => n + p.count, 0);
    sent += count;
    m.countSummary([{ origin: 'software', pc: UDP, reason: 'NO_SOCKET', count, places }]);
  }
  const text = await m.registry.metrics();
  const got = samples(text, 'dropwatch_drops_total');
  assert.deepEqual(
    got.map((s) => `${s.labels.netns}|${s.labels.device} ${s.value}`).sort(),
    ['blue|a 3', `${RED}|b 6`, 'other|other 21'].sort(),
  );
  assert.equal(
    got.reduce((n, s) => n + s.value, 0),
    sent,
  );
  assert.deepEqual(samples(text, 'dropwatch_metrics_series_folded'), [{ labels: {}, value: 2 }]);
  if (existsSync(PROMTOOL)) {
    const lint = promtoolCheck(text);
    assert.equal(lint.status, 0, lint.output);
  }
});
