// `dev == NAME` in the kernel on the bpf source, on the real kernel: a veth pair whose two ends have the same name in
// two namespaces; the filter keeps the drops on that name in both (one name, two ifindexes) and nothing else, and the
// kernel's own counter shows the drops on other devices (loopback) never reached user space.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { CliRun } from '../helpers/cli.js';
import { validateEvent } from '../helpers/schema.js';

const skip = canRunKernelTests();
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

interface Place {
  netns: number | null;
  ifindex: number | null;
  ifname: string | null;
  count: number;
}
interface Summary {
  type: string;
  symbol?: string | null;
  reason?: string | null;
  places?: Place[];
}

describe('bpf: dev == NAME filtered in the kernel', { skip }, () => {
  let a: Netns;
  let b: Netns;
  const dev = `dwv${randomBytes(3).toString('hex')}`;

  before(() => {
    a = new Netns();
    b = new Netns();
    // The same name on both ends: a name stands for a device in every namespace, an ifindex in one.
    ip('link', 'add', 'dwtmp0', 'netns', a.name, 'type', 'veth', 'peer', 'name', 'dwtmp1', 'netns', b.name);
    ip('-n', a.name, 'link', 'set', 'dwtmp0', 'name', dev);
    ip('-n', b.name, 'link', 'set', 'dwtmp1', 'name', dev);
    ip('-n', a.name, 'addr', 'add', '10.199.2.1/24', 'dev', dev);
    ip('-n', b.name, 'addr', 'add', '10.199.2.2/24', 'dev', dev);
    ip('-n', a.name, 'link', 'set', dev, 'up');
    ip('-n', b.name, 'link', 'set', dev, 'up');
  });
  after(() => {
    a.delete();
    b.delete();
  });

  test('only drops on that name reach user space, from both namespaces; loopback drops are kept back', async () => {
    const [toB, toA, onLo] = [300, 100, 200];
    const json = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', `dev == ${dev}`]);
    const repl = new CliRun(['-b', 'bpf']);
    repl.write(`set filter dev == ${dev}\nstart\n`);
    await json.monitoring();
    await repl.waitFor(/Issue Ctrl-C to stop monitoring\n/);
    await a.sendUdp('10.199.2.2', toB);
    await b.sendUdp('10.199.2.1', toA);
    await a.sendUdp('127.0.0.1', onLo);
    await sleep(1500);
    json.kill('SIGINT');
    repl.kill('SIGINT');
    const done = await json.done;
    assert.equal(done.code, 0, done.stderr);
    const events = done.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const e = JSON.parse(line) as Summary;
        assert.deepEqual(validateEvent(e), [], line);
        return e;
      })
      .filter((e) => e.type === 'summary');
    const places = events.flatMap((e) => e.places ?? []);
    assert.ok(places.length > 0);
    assert.ok(
      places.every((p) => p.ifname === dev),
      JSON.stringify(places.filter((p) => p.ifname !== dev)),
    );
    const udp = events.filter((e) => e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET');
    const inNs = (ns: Netns) =>
      udp
        .flatMap((e) => e.places ?? [])
        .filter((p) => p.netns === ns.inode)
        .reduce((n, p) => n + p.count, 0);
    assert.equal(inNs(b), toB);
    assert.equal(inNs(a), toA);
    const indexes = new Set(places.map((p) => `${p.netns}/${p.ifindex}`));
    assert.ok(indexes.size >= 2, 'one name, a device in each namespace');

    await repl.waitFor(/Got a stop message\n/);
    repl.end('stats\n');
    const r = await repl.done;
    const kept = /^Kept back by the kernel filter: (\d+)$/m.exec(r.stdout + r.stderr);
    assert.ok(kept, r.stdout + r.stderr);
    assert.ok(Number(kept[1]) >= onLo, kept[0]);
  });
});
