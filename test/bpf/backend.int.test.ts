// The bpf source on the real kernel (BTF, tp_btf/kfree_skb): the built CLI counts drops made in a namespace this test
// creates, exactly for that namespace (no other process drops there) and at least as many in the summed text line;
// packet mode decodes each; bad objects and BTF fail in one line; kill -9 leaves none of our programs loaded.
import { bpfObjects, orphanedSince } from '../helpers/bpf-objects.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openBpfBackend } from '../../src/bpf/backend.js';
import { DropwatchError } from '../../src/errors/index.js';
import type { BackendEvent } from '../../src/backend/types.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns, vethPair } from '../helpers/netns.js';
import { BIN, CliRun, countDrops } from '../helpers/cli.js';
import { validateEvent } from '../helpers/schema.js';

const skip = canRunKernelTests();

/** The ids of the BPF programs `pid` holds open, from its descriptors' fdinfo (a link's names its program too). */
function programsOf(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m && !ids.includes(Number(m[1]))) ids.push(Number(m[1]));
    } catch {
      // Closed while we looked.
    }
  }
  return ids;
}

/** Every loaded program's id, as bpftool lists them. */
function loadedIds(): Set<number> {
  const list = JSON.parse(execFileSync('bpftool', ['prog', 'list', '-j'], { encoding: 'utf8' })) as { id: number }[];
  return new Set(list.map((p) => p.id));
}

interface Json {
  type: string;
  count: number;
  symbol?: string | null;
  reason?: string | null;
  places?: { netns: number | null; ifindex: number | null; ifname: string | null; count: number }[];
  ifname?: string | null;
  netns?: number | null;
  dport?: number | null;
  l4?: string | null;
}

describe('bpf backend on the real kernel', { skip }, () => {
  let ns: Netns;
  let inode: number;
  let work: string;

  before(() => {
    ns = new Netns();
    inode = ns.inode;
    work = mkdtempSync(join(tmpdir(), 'dwtest-bpf-'));
  });
  after(() => {
    ns.delete();
    rmSync(work, { recursive: true, force: true });
  });

  test('summary: N drops in our namespace counted exactly there, the text line byte-compatible with a reason', async () => {
    const n = 2000;
    const json = new CliRun(['-b', 'bpf', '-s', '-f', 'json']);
    const text = new CliRun(['-b', 'bpf', '-s', '-l', 'kas']);
    await Promise.all([json.monitoring(), text.monitoring()]);
    await ns.sendUdp('127.0.0.1', n);
    await sleep(1500);
    json.kill('SIGINT');
    text.kill('SIGINT');
    const [j, t] = await Promise.all([json.done, text.done]);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(t.code, 0, t.stderr);
    let ours = 0;
    for (const line of j.stdout.split('\n').filter(Boolean)) {
      const event = JSON.parse(line) as Json;
      assert.deepEqual(validateEvent(event), [], line);
      if (event.type !== 'summary') continue;
      assert.equal(
        event.places!.reduce((sum, p) => sum + p.count, 0),
        event.count,
        'places add up to the line',
      );
      if (event.symbol !== '__udp4_lib_rcv' || event.reason !== 'NO_SOCKET') continue;
      for (const p of event.places!) if (p.netns === inode) ours += p.count;
      for (const p of event.places!) if (p.netns === inode) assert.equal(p.ifname, 'lo');
    }
    assert.equal(ours, n, 'every drop in our namespace, once');
    assert.ok(countDrops(t.stdout, '__udp4_lib_rcv', 'NO_SOCKET') >= n, t.stdout);
  });

  test("two namespaces joined by a veth pair: each drop carries the receiving side's namespace and device", async (t) => {
    const sender = new Netns();
    const receiver = new Netns();
    t.after(() => {
      sender.delete();
      receiver.delete();
    });
    const [, { dev: into, ifindex }] = vethPair(sender, receiver);
    const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
    const receiverInode = receiver.inode;
    assert.equal(
      ip('netns', 'identify', String(process.pid)).trim(),
      '',
      'the test itself runs in the initial namespace',
    );

    const n = 300;
    const run = new CliRun(['-b', 'bpf', '-s', '-f', 'json']);
    await run.monitoring();
    await sender.sendUdp('10.199.0.2', n);
    await sleep(1200);
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    const places = done.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Json)
      .filter((e) => e.type === 'summary' && e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET')
      .flatMap((e) => e.places!)
      .filter((p) => p.netns === receiverInode);
    // One place per summary interval the drops fell in, each naming the receiving veth.
    assert.ok(
      places.length > 0 && places.every((p) => p.ifindex === ifindex && p.ifname === into),
      JSON.stringify(places),
    );
    assert.equal(
      places.reduce((sum, p) => sum + p.count, 0),
      n,
    );
  });

  test('packet mode: each drop with its device, reason and decoded flow', async () => {
    const n = 50;
    // Our namespace only, filtered in the kernel: another process's flood meanwhile would fill the ring before ours.
    const run = new CliRun(['-b', 'bpf', '-s', '-m', 'packet', '-f', 'json', '--filter', `netns == ${ns.inode}`]);
    await run.monitoring();
    await ns.sendUdp('127.0.0.1', n);
    await sleep(500);
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    const events = done.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Json);
    for (const e of events) assert.deepEqual(validateEvent(e), []);
    // Ours by namespace too: other processes send to port 9 as well, over other devices.
    const ours = events.filter(
      (e) =>
        e.type === 'packet' &&
        e.symbol === '__udp4_lib_rcv' &&
        e.reason === 'NO_SOCKET' &&
        e.dport === 9 &&
        e.netns === ns.inode,
    );
    assert.ok(ours.length >= n, `${ours.length} of ${n}`);
    assert.ok(ours.every((e) => e.ifname === 'lo' && e.l4 === 'udp'));
    // Other processes' floods can fill the ring meanwhile: then their losses come as lost lines, never silently.
  });

  test('packet mode: the wakeup as the ring crosses wakeupBytes brings the packets, long before the timer', async () => {
    const backend = await openBpfBackend({ wakeupBytes: 4096, pollIntervalMs: 60_000 });
    const events: BackendEvent[] = [];
    backend.onEvent((e) => events.push(e));
    const ours = () =>
      events.filter((e) => e.kind === 'packet' && e.packet.flow?.dst === '127.0.0.89' && e.packet.flow.dport === 9)
        .length;
    let beforeStop = 0;
    try {
      await backend.setConfig({ alertMode: 'packet' });
      await backend.start({ sw: true, hw: false });
      // 50 records are past 4096 bytes: the program wakes us once on the way.
      await ns.sendUdp('127.0.0.89', 50);
      for (let waited = 0; ours() === 0 && waited < 5000; waited += 50) await sleep(50);
      beforeStop = ours();
      await backend.stop();
    } finally {
      await backend.close();
    }
    assert.ok(beforeStop > 0, 'packets read before stop, with the timer a minute away');
  });

  test('a ring too small for the drops: reserve failures are lost events covering every drop not delivered', async () => {
    // One page of ring, never read until stop: most of the drops cannot be reserved.
    const backend = await openBpfBackend({ ringBytes: 4096, pollIntervalMs: 60_000 });
    const events: BackendEvent[] = [];
    backend.onEvent((e) => events.push(e));
    const n = 500;
    try {
      await backend.setConfig({ alertMode: 'packet' });
      await backend.start({ sw: true, hw: false });
      // A destination no other test uses, so our packets are known by their flow.
      await ns.sendUdp('127.0.0.88', n);
      await backend.stop();
    } finally {
      await backend.close();
    }
    const ours = events.filter(
      (e) => e.kind === 'packet' && e.packet.flow?.dst === '127.0.0.88' && e.packet.flow.dport === 9,
    ).length;
    const lost = events
      .filter((e) => e.kind === 'lost' && e.where === 'bpf packet ring full')
      .reduce((sum, e) => sum + (e.kind === 'lost' ? e.count : 0), 0);
    // Other processes' drops share the ring, so how many of ours fit varies; every one that did not is counted.
    assert.ok(ours < n, `${ours} of ${n} delivered`);
    assert.ok(lost >= n - ours, `lost ${lost}, undelivered ${n - ours}`);
  });

  test('a corrupt object and an empty BTF: one line each, naming the cause and -b tracefs', async () => {
    const object = join(work, 'corrupt.bpf.o');
    writeFileSync(object, Buffer.from('\x7fELF this is not an object'));
    const btf = join(work, 'empty.btf');
    writeFileSync(btf, '');
    const before = loadedIds();
    for (const [options, pattern] of [
      [{ objectPath: object }, /corrupt or not dropwatch's/],
      [{ btfPath: btf }, /no usable BTF/],
    ] as const) {
      await assert.rejects(openBpfBackend(options), (err: unknown) => {
        assert.ok(err instanceof DropwatchError);
        assert.equal(err.code, 'E_BPF_MISSING');
        assert.match(err.message, pattern);
        assert.match(err.message, /-b tracefs$/);
        assert.ok(!err.message.includes('\n'));
        return true;
      });
    }
    const added = [...loadedIds()].filter((id) => !before.has(id));
    assert.deepEqual(added, [], 'nothing loaded is left');
  });

  test('without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN: one line naming them and -b tracefs, exit 1', async () => {
    const drop = '-bpf,-perfmon,-sys_admin';
    const before = bpfObjects();
    const r = spawnSync(
      'setpriv',
      ['--bounding-set', drop, '--inh-caps', drop, process.execPath, BIN, '-b', 'bpf', '-s', '-d', '1'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'dropwatch: the kernel refused to load a BPF program (Operation not permitted): it needs root, or CAP_BPF ' +
        'with CAP_PERFMON; use -b tracefs\n',
    );
    // Other processes may load their own meanwhile: what counts is what no live process holds.
    assert.deepEqual(await orphanedSince(before), { progs: [], maps: [] });
  });

  test('kill -9 while monitoring leaves none of our programs loaded', async (t) => {
    const run = new CliRun(['-b', 'bpf', '-s']);
    t.after(() => run.kill('SIGKILL'));
    await run.monitoring();
    const ids = programsOf(run.child.pid!);
    assert.equal(ids.length, 1, 'dropwatch holds one program');
    assert.ok(loadedIds().has(ids[0]!), 'and bpftool lists it');
    run.kill('SIGKILL');
    await run.done;
    // The kernel frees a program once its last descriptor is closed, which can trail the exit a little.
    const deadline = Date.now() + 5000;
    while (ids.some((id) => loadedIds().has(id)) && Date.now() < deadline) await sleep(50);
    assert.deepEqual(
      ids.filter((id) => loadedIds().has(id)),
      [],
    );
  });
});
