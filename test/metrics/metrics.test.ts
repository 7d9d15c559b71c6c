// Metrics without a kernel: label mapping (symbol only, never an address), loss counters, the gauge, the HTTP endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createDropMetrics, serveMetrics } from '../../src/metrics/index.js';
import { DropwatchError } from '../../src/errors/index.js';
import { PROMTOOL, promtoolCheck } from './prom.js';

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
