// The task's cgroup on the real kernel: a sender put in a cgroup this test makes under the unified hierarchy, whose
// datagrams an iptables OUTPUT rule drops in its own context, is named by that cgroup's path (and the container ID the
// path names, though its namespace names none) in summary JSON, packet JSON and --by container; its datagrams dropped
// in softirq (UDP to a closed port) carry no cgroup.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseCgroup2Mount } from '../../src/workload/cgroup.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { CliRun } from '../helpers/cli.js';
import { validEvents } from '../helpers/schema.js';

const skip = canRunKernelTests();

interface Place {
  netns: number | null;
  netnsName: string | null;
  container: string | null;
  pid?: number | null;
  cgroupId?: number | null;
  cgroup?: string | null;
  count: number;
}
interface Event extends Partial<Place> {
  type: string;
  reason?: string | null;
  symbol?: string | null;
  dport?: number | null;
  places?: Place[];
}

const events = (stdout: string): Event[] => validEvents<Event>(stdout);
const total = (ps: readonly { count: number }[]) => ps.reduce((n, p) => n + p.count, 0);

describe('bpf: the cgroup of the task a drop happened in, on the real kernel', { skip }, () => {
  let ns: Netns;
  let root: string;
  const id = randomBytes(32).toString('hex');
  const parent = `/dwtest-${randomBytes(3).toString('hex')}`;
  const path = `${parent}/libpod-${id}.scope`;

  before(() => {
    ns = new Netns();
    execFileSync('ip', [
      'netns',
      'exec',
      ns.name,
      'iptables',
      '-A',
      'OUTPUT',
      '-p',
      'udp',
      '--dport',
      '10',
      '-j',
      'DROP',
    ]);
    root = parseCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))!;
    assert.ok(root, 'a cgroup v2 hierarchy is mounted');
  });
  after(() => {
    ns.delete();
    for (const dir of [path, parent]) spawnSync('rmdir', [`${root}${dir}`]);
  });

  /** Bursts of 50 datagrams to port 10 (dropped at OUTPUT) and to port 9 (closed), from a process in the cgroup. */
  async function send(bursts: number): Promise<void> {
    const code =
      "const s=require('dgram').createSocket('udp4');let i=0;" +
      "(function f(){if(i>=100)return s.close();s.send('x',i++<50?10:9,'127.0.0.1',()=>f())})()";
    for (let b = 0; b < bursts; b++) {
      execFileSync('sh', [
        '-c',
        `echo $$ > '${root}${path}/cgroup.procs' && exec ip netns exec ${ns.name} '${process.execPath}' -e "${code}"`,
      ]);
      await sleep(700);
    }
  }

  test("transmit drops carry the sender's cgroup path and the container it names; softirq drops none", async () => {
    const filter = `netns == ${ns.inode}`;
    const summary = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', filter]);
    const packets = new CliRun(['-b', 'bpf', '-s', '-m', 'packet', '-f', 'json', '--filter', filter]);
    const byContainer = new CliRun(['-b', 'bpf', '-s', '--by', 'container', '--filter', filter]);
    const runs = [summary, packets, byContainer];
    await Promise.all(runs.map((r) => r.monitoring()));
    // Made after dropwatch started: found by the walk an unknown id asks for.
    mkdirSync(`${root}${path}`, { recursive: true });
    const cgroupId = statSync(`${root}${path}`).ino;
    await send(4);
    await sleep(1200);
    for (const r of runs) r.kill('SIGINT');
    const [s, p, c] = await Promise.all(runs.map((r) => r.done));
    for (const r of [s!, p!, c!]) assert.equal(r.code, 0, r.stderr);

    const counted = events(s!.stdout).filter((e) => e.type === 'summary');
    const nf = counted.filter((e) => e.reason === 'NETFILTER_DROP').flatMap((e) => e.places ?? []);
    assert.equal(total(nf), 200);
    assert.ok(
      nf.every((pl) => pl.cgroupId === cgroupId && pl.pid! > 0),
      JSON.stringify(nf),
    );
    const named = nf.filter((pl) => pl.cgroup === path);
    assert.ok(named.length > 0, `some interval names ${path}: ${JSON.stringify(nf)}`);
    // The namespace is an ip netns one, no container's: the container comes from the task's cgroup.
    assert.ok(
      named.every((pl) => pl.container === id && pl.netnsName === ns.name),
      JSON.stringify(named),
    );
    const softirq = counted
      .filter((e) => e.symbol === '__udp4_lib_rcv' && e.reason === 'NO_SOCKET')
      .flatMap((e) => e.places ?? []);
    assert.equal(total(softirq), 200);
    assert.ok(softirq.every((pl) => pl.cgroupId === null && pl.cgroup === null && pl.pid === null));

    const dropped = events(p!.stdout).filter((e) => e.type === 'packet');
    const output = dropped.filter((e) => e.reason === 'NETFILTER_DROP');
    assert.equal(output.length, 200);
    assert.ok(output.every((e) => e.cgroupId === cgroupId && e.dport === 10));
    assert.ok(output.some((e) => e.cgroup === path && e.container === id));
    const closed = dropped.filter((e) => e.reason === 'NO_SOCKET' && e.dport === 9);
    assert.equal(closed.length, 200);
    assert.ok(closed.every((e) => e.cgroupId === null && e.cgroup === null));

    assert.match(c!.stdout, new RegExp(`^\\d+ drops · container ${id.slice(0, 12)}$`, 'm'), c!.stdout);
  });
});
