// --metrics against the real Prometheus: a loopback server scrapes a running dropwatch while we make real drops, and its
// HTTP API must report exactly the drops we made; promtool must accept the exposition.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliRun } from '../helpers/cli.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { ensurePrometheus, PrometheusServer, promtoolCheck } from './prom.js';

const kernelSkip = canRunKernelTests();
let promSkip: string | false = 'not checked';
let ns: Netns | null = null;

before(() => {
  if (kernelSkip) return;
  promSkip = ensurePrometheus();
  ns = new Netns();
});
after(() => ns?.delete());

async function metricsUrl(run: CliRun): Promise<string> {
  const start = Date.now();
  for (;;) {
    const m = /Serving Prometheus metrics on (\S+)/.exec(run.stderr);
    if (m && run.stderr.includes('Kernel monitoring activated.')) return m[1]!;
    if (run.child.exitCode !== null || Date.now() - start > 10_000)
      throw new Error(`dropwatch did not start serving:\n${run.stderr}`);
    await sleep(25);
  }
}

test(
  'Prometheus scrapes dropwatch_drops_total equal to the drops we made; promtool accepts /metrics',
  { skip: kernelSkip },
  async (t) => {
    if (promSkip) {
      t.skip(promSkip);
      return;
    }
    const sent = 150;
    // IPv6 NO_SOCKET in our own namespace: nothing else on this machine makes these, so the count is exact.
    const run = new CliRun([
      '-b',
      'tracefs',
      '-s',
      '--metrics',
      '127.0.0.1:0',
      '--filter',
      'reason == NO_SOCKET && protocol == ipv6',
    ]);
    const prom = new PrometheusServer();
    try {
      const url = await metricsUrl(run);
      const target = new URL(url).host;
      await prom.start(target, 1);

      const series =
        'dropwatch_drops_total{job="dropwatch",symbol="__udp6_lib_rcv",reason="NO_SOCKET",origin="software"}';
      // The gauge says we are monitoring, and nothing of ours has been counted yet.
      let active: number | null = null;
      for (let i = 0; i < 40 && active === null; i++) {
        active = await prom.query('dropwatch_monitoring_active{job="dropwatch"}');
        if (active === null) await sleep(250);
      }
      assert.equal(active, 1, `target: ${await prom.targetHealth()}`);
      assert.equal(await prom.query(series), null);

      await ns!.sendUdp('::1', sent);
      let scraped: number | null = null;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        scraped = await prom.query(series);
        if (scraped !== null && scraped >= sent) break;
        await sleep(300);
      }
      // A moment more: a late count would show up as more than we sent.
      await sleep(1500);
      scraped = await prom.query(series);
      const exposition = await (await fetch(url)).text();
      const served =
        /^dropwatch_drops_total\{symbol="__udp6_lib_rcv",reason="NO_SOCKET",origin="software"\} (\d+)$/m.exec(
          exposition,
        )?.[1];
      console.log(`prometheus: sent ${sent}, scraped ${scraped}, served ${served}`);
      assert.equal(scraped, sent);
      assert.equal(Number(served), sent);
      assert.doesNotMatch(exposition, /0x[0-9a-f]{8,}/, 'no raw addresses in labels');

      const lint = promtoolCheck(exposition);
      assert.equal(lint.status, 0, lint.output);
    } finally {
      run.kill('SIGTERM');
      const done = await run.done;
      await prom.stop();
      assert.equal(done.code, 0, done.stderr);
    }
  },
);
