// Filters in the kernel on the bpf source, on the real kernel: drops in two namespaces joined by a veth pair, the
// built CLI with --filter on netns, ifindex, protocol and reason counts the kept ones exactly, the kernel's own
// counter shows the rest never reached us, and a filter changed while monitoring neither loses nor repeats a drop.
// Also the task: a drop in the sender's own context (an iptables OUTPUT rule) names it, a softirq drop names none.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { openBpfBackend } from '../../src/bpf/backend.js';
import type { BackendEvent, DropPlace } from '../../src/backend/types.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { CliRun, type Finished } from '../helpers/cli.js';
import { validEvents } from '../helpers/schema.js';

const skip = canRunKernelTests();
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

interface Summary {
  type: string;
  count: number;
  symbol?: string | null;
  reason?: string | null;
  places?: (DropPlace & { pid?: number | null; comm?: string | null })[];
}

/** The summary events of a JSON run, each checked against the schema. */
function summaries(stdout: string): Summary[] {
  return validEvents<Summary>(stdout).filter((e) => e.type === 'summary');
}

const places = (events: Summary[]) => events.flatMap((e) => e.places ?? []);
const total = (ps: readonly { count: number }[]) => ps.reduce((n, p) => n + p.count, 0);

describe('bpf kernel filters and tasks on the real kernel', { skip }, () => {
  let sender: Netns;
  let receiver: Netns;
  let senderInode: number;
  let receiverInode: number;
  let vethIfindex: number;

  before(() => {
    sender = new Netns();
    receiver = new Netns();
    const tag = randomBytes(3).toString('hex');
    const [out, into] = [`dwa${tag}`, `dwb${tag}`];
    ip('link', 'add', out, 'netns', sender.name, 'type', 'veth', 'peer', 'name', into, 'netns', receiver.name);
    ip('-n', sender.name, 'addr', 'add', '10.199.1.1/24', 'dev', out);
    ip('-n', receiver.name, 'addr', 'add', '10.199.1.2/24', 'dev', into);
    ip('-n', sender.name, 'link', 'set', out, 'up');
    ip('-n', receiver.name, 'link', 'set', into, 'up');
    vethIfindex = Number(/^(\d+):/.exec(ip('-n', receiver.name, '-o', 'link', 'show', into))![1]);
    senderInode = statSync(`/run/netns/${sender.name}`).ino;
    receiverInode = statSync(`/run/netns/${receiver.name}`).ino;
  });
  after(() => {
    sender.delete();
    receiver.delete();
  });

  test('--filter on netns, ifindex, protocol and reason: exactly the kept drops, the rest held back in the kernel', async () => {
    const [toVeth, v4Local, v6Local] = [300, 200, 100];
    const json = (filter: string) => new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', filter]);
    const byNetns = json(`netns == ${receiverInode}`);
    const byDevice = json(`ifindex == ${vethIfindex} && netns == ${receiverInode} && reason == NO_SOCKET`);
    const byProtocol = json(`protocol == ipv6 && netns == ${senderInode}`);
    const nothing = json(`netns == ${receiverInode} && reason == NETFILTER_DROP`);
    // A REPL with the same filter as byNetns, to read the kernel's count of drops it kept back.
    const repl = new CliRun(['-b', 'bpf']);
    repl.write(`set filter netns == ${receiverInode}\nstart\n`);
    const runs = [byNetns, byDevice, byProtocol, nothing];
    await Promise.all(runs.map((r) => r.monitoring()));
    await repl.waitFor(/Issue Ctrl-C to stop monitoring\n/);
    await sender.sendUdp('10.199.1.2', toVeth);
    await sender.sendUdp('127.0.0.1', v4Local);
    await sender.sendUdp('::1', v6Local);
    await sleep(1500);
    for (const r of runs) r.kill('SIGINT');
    const [n, d, p, none] = (await Promise.all(runs.map((r) => r.done))) as [Finished, Finished, Finished, Finished];
    for (const r of [n, d, p, none]) assert.equal(r.code, 0, r.stderr);

    const inNetns = summaries(n.stdout);
    assert.ok(
      places(inNetns).every((pl) => pl.netns === receiverInode),
      'only the receiving namespace reached us',
    );
    // The veth also carries the kernel's own IPv6 chatter (router solicitations and the like), dropped there too.
    const udp = inNetns.filter((e) => e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET');
    assert.equal(total(places(udp)), toVeth);
    const atDevice = places(summaries(d.stdout));
    assert.ok(atDevice.every((pl) => pl.ifindex === vethIfindex));
    assert.equal(total(atDevice), toVeth);
    const inV6 = summaries(p.stdout);
    assert.ok(places(inV6).every((pl) => pl.netns === senderInode));
    const v6 = places(inV6.filter((e) => e.symbol === '__udp6_lib_rcv' && e.reason === 'NO_SOCKET'));
    assert.ok(v6.every((pl) => pl.ifname === 'lo'));
    assert.equal(total(v6), v6Local);
    assert.deepEqual(summaries(none.stdout), []);

    repl.kill('SIGINT');
    await repl.waitFor(/Got a stop message\n/);
    repl.end('stats\n');
    const r = await repl.done;
    const kept = /^Kept back by the kernel filter: (\d+)$/m.exec(r.stdout + r.stderr);
    assert.ok(kept, r.stdout + r.stderr);
    // At least the sender's own drops (and whatever the host dropped meanwhile) never reached user space.
    assert.ok(Number(kept[1]) >= v4Local + v6Local, kept[0]);
  });

  test('a filter changed while monitoring: each drop counted under one filter, none lost, none twice', async () => {
    const backend = await openBpfBackend({ drainIntervalMs: 100 });
    const events: BackendEvent[] = [];
    backend.onEvent((e) => events.push(e));
    const kf = backend.capabilities.kernelFilter;
    assert.equal(kf?.syntax, 'field-sets');
    const ours = (inode: number) =>
      events
        .flatMap((e) => (e.kind === 'summary' ? e.entries.flatMap((en) => en.places ?? []) : []))
        .filter((pl) => pl.netns === inode)
        .reduce((sum, pl) => sum + pl.count, 0);
    try {
      // IPv4 only: the veth also carries the kernel's own IPv6 chatter, dropped now and then.
      const ipv4 = { allow: true, values: [0x0800] };
      await kf.apply({ none: false, fields: { netns: { allow: true, values: [receiverInode] }, protocol: ipv4 } });
      await backend.start({ sw: true, hw: false });
      const flood = sender.sendUdp('10.199.1.2', 400);
      const local = sender.sendUdp('127.0.0.1', 400);
      // Switched while both floods run: the receiver's drops stay kept, the sender's are let through from now on.
      await sleep(30);
      const both = { allow: true, values: [receiverInode, senderInode] };
      await kf.apply({ none: false, fields: { netns: both, protocol: ipv4 } });
      await Promise.all([flood, local]);
      await sender.sendUdp('127.0.0.1', 100);
      await sleep(500);
    } finally {
      await backend.close();
    }
    assert.equal(ours(receiverInode), 400, 'never filtered: every drop once');
    const local = ours(senderInode);
    assert.ok(local >= 100 && local <= 500, `the sender's drops after the switch, once each: ${local}`);
  });

  test("the task: a drop in the sender's own context names it; a softirq drop names none", async (t) => {
    execFileSync('ip', [
      'netns',
      'exec',
      sender.name,
      'iptables',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '9',
      '-d',
      '10.199.1.2',
      '-j',
      'DROP',
    ]);
    t.after(() => execFileSync('ip', ['netns', 'exec', sender.name, 'iptables', '-F', 'OUTPUT']));
    const run = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', `netns == ${senderInode}`]);
    await run.monitoring();
    // The rule makes each send fail with EPERM, which this sender ignores.
    const code =
      "const s=require('dgram').createSocket('udp4');let i=0;" +
      "(function f(){if(i++>=50)return s.close();s.send('drop',9,'10.199.1.2',f)})()";
    execFileSync('ip', ['netns', 'exec', sender.name, process.execPath, '-e', code]);
    await sender.sendUdp('127.0.0.1', 60);
    await sleep(1500);
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    const events = summaries(done.stdout);
    const nf = places(events.filter((e) => e.reason === 'NETFILTER_DROP'));
    assert.equal(total(nf), 50);
    assert.ok(
      nf.every((pl) => typeof pl.pid === 'number' && pl.pid > 0 && pl.comm === 'node'),
      JSON.stringify(nf),
    );
    const softirq = places(events.filter((e) => e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET'));
    assert.equal(total(softirq), 60);
    assert.ok(
      softirq.every((pl) => pl.pid === null && pl.comm === null),
      JSON.stringify(softirq),
    );
  });
});
