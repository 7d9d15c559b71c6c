// The resolver over a scripted /proc: names by ip-netns, container and pod; scans coalesced, bounded, and re-checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createWorkloadNames } from '../../src/workload/index.js';
import type { WorkloadResolver } from '../../src/workload/resolver.js';
import { join } from 'node:path';
import { fixturePath, projectRoot } from '../helpers/paths.js';
import { ManualTimers, ScriptedFiles } from './scripted.js';

const fixture = (name: string): string => readFileSync(fixturePath('workload', name), 'utf8');
const HOST = 4026531840;
const ID = 'c63cdae9055b2f7249700c6fe8cfde62275522da6b34d43ce07afed40ff51112';
const PAUSE = '5d1b0e5a8f7c4d3e2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b';
const POD_UID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const KUBE = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID.replaceAll('-', '_')}.slice`;
const TASKS = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
const NOBODY = { netnsName: null, container: null, containerName: null, pod: null, podUid: null };

function node(): ScriptedFiles {
  return new ScriptedFiles().process(1, { netns: HOST, cgroup: '0::/init.scope\n' }).process(2, { netns: HOST });
}

function start(files: ScriptedFiles, extra: { maxNamespaces?: number } = {}) {
  const timers = new ManualTimers();
  const names = createWorkloadNames({ files, timers, now: timers.now, ...extra });
  /** Moves the clock and waits for the scan or re-check it started. */
  const step = async (ms: number): Promise<void> => {
    timers.advance(ms);
    await names.settled();
  };
  return { names, timers, step };
}

const scans = (files: ScriptedFiles): number => files.count('/proc');

test('the host namespace (PID 1) is host; before the first scan every namespace answers with null names', async () => {
  const files = node();
  const { names, step } = start(files);
  assert.deepEqual(names.lookup(HOST), { netns: HOST, ...NOBODY });
  await step(0);
  assert.equal(names.lookup(HOST).netnsName, 'host');
  names.close();
});

test("where PID 1's namespace cannot be read (a supervisor as PID 1), host is this process's own", async () => {
  const files = node().process(3, { netns: 7000 });
  files.failing.set('/proc/1/ns/net', 'EACCES');
  files.links.set('/proc/self/ns/net', `net:[${HOST}]`);
  const { names, step } = start(files);
  await step(0);
  assert.equal(names.lookup(HOST).netnsName, 'host');
  assert.equal(names.lookup(7000).netnsName, null);
  await step(5000);
  assert.equal(names.lookup(HOST).netnsName, 'host', 'and stays host through re-checks');
  names.close();
});

test('an ip netns name, from the inode of its /run/netns file, with or without a process in it', async () => {
  const files = node().ipNetns('blue', 7001).ipNetns('red', 7002).process(50, { netns: 7002 });
  const { names, step } = start(files);
  await step(0);
  assert.deepEqual(names.lookup(7001), { netns: 7001, ...NOBODY, netnsName: 'blue' });
  assert.deepEqual(names.lookup(7002), { netns: 7002, ...NOBODY, netnsName: 'red' });
  names.close();
});

test('a Kubernetes pod (systemd driver, containerd): the app container, not the sandbox, named from its bundle', async () => {
  const files = node()
    .process(60, { netns: 7100, cgroup: `0::/\n8:pids:${KUBE}/cri-containerd-${PAUSE}.scope\n` })
    .process(61, { netns: 7100, cgroup: `0::/\n8:pids:${KUBE}/cri-containerd-${ID}.scope\n` });
  files.files.set(`${TASKS}/${PAUSE}/config.json`, fixture('cri-containerd-sandbox-config.json'));
  files.files.set(`${TASKS}/${ID}/config.json`, fixture('cri-containerd-config.json'));
  const { names, step } = start(files);
  await step(0);
  assert.deepEqual(names.lookup(7100), {
    netns: 7100,
    netnsName: null,
    container: ID,
    containerName: 'cart',
    pod: 'shop/cart-7d9f',
    podUid: POD_UID,
  });
  names.close();
});

test('a pod whose bundle is not there yet still has its uid from the cgroup path', async () => {
  const files = node().process(60, { netns: 7100, cgroup: `8:pids:/kubepods/besteffort/pod${POD_UID}/${ID}\n` });
  const { names, step } = start(files);
  await step(0);
  assert.deepEqual(names.lookup(7100), { netns: 7100, ...NOBODY, container: ID, podUid: POD_UID });
  names.close();
});

test('Podman (captured cgroup and store), CRI-O (userdata bundle) and Docker (config.v2.json) names', async () => {
  const podman = readFileSync(fixturePath('workload', 'podman.id'), 'utf8').trim();
  const crio = 'd'.repeat(64);
  const files = node()
    .process(70, { netns: 7200, cgroup: fixture('podman-v1.cgroup') })
    .process(71, { netns: 7201, cgroup: `0::/kubepods.slice/kubepods-pod1_2.slice/crio-${crio}.scope\n` })
    .process(72, { netns: 7202, cgroup: fixture('docker-v2.cgroup') });
  files.files.set('/var/lib/containers/storage/overlay-containers/containers.json', fixture('podman-containers.json'));
  files.files.set(
    `/var/lib/containers/storage/overlay-containers/${podman}/userdata/config.json`,
    fixture('podman-config.json'),
  );
  files.files.set(
    `/run/containers/storage/overlay-containers/${crio}/userdata/config.json`,
    fixture('crio-config.json'),
  );
  files.files.set(`/var/lib/docker/containers/${ID}/config.v2.json`, fixture('docker-config.v2.json'));
  const { names, step } = start(files);
  await step(0);
  assert.deepEqual(names.lookup(7200), { netns: 7200, ...NOBODY, container: podman, containerName: 'dwtest-try' });
  assert.deepEqual(names.lookup(7201), {
    ...{ netns: 7201, netnsName: null, container: crio, containerName: 'redis' },
    ...{ pod: 'data/cache-0', podUid: '5e6f7a8b-1c2d-4e3f-9a8b-7c6d5e4f3a2b' },
  });
  assert.deepEqual(names.lookup(7202), { netns: 7202, ...NOBODY, container: ID, containerName: 'web-1' });
  names.close();
});

test('an unknown namespace: null names at once, one scan for many lookups, named after it', async () => {
  const files = node();
  const { names, step } = start(files);
  await step(0);
  assert.equal(scans(files), 1);
  files.ipNetns('late', 7300).process(80, { netns: 7301 });
  for (let i = 0; i < 100; i++) {
    assert.equal(names.lookup(7300).netnsName, null);
    names.lookup(7301);
  }
  await step(999);
  assert.equal(scans(files), 1, 'no second scan within the interval of the first');
  await step(1);
  assert.equal(scans(files), 2, 'one scan for every lookup that asked');
  assert.equal(names.lookup(7300).netnsName, 'late');
  assert.equal(names.lookup(7301).netns, 7301);
  names.close();
});

test('a scan that takes long spaces the next ones out: scans take at most a tenth of the time', async () => {
  const files = node();
  const timers = new ManualTimers();
  const listing = files.readdir.bind(files);
  files.readdir = async (path: string): Promise<string[]> => {
    if (path === '/proc') timers.time += 500;
    return listing(path);
  };
  const names = createWorkloadNames({ files, timers, now: timers.now });
  const step = async (ms: number): Promise<void> => {
    timers.advance(ms);
    await names.settled();
  };
  await step(0);
  names.lookup(7600);
  await step(4000);
  assert.equal(scans(files), 1, 'a 500 ms scan is followed by none for 5 s from its start');
  await step(1000);
  assert.equal(scans(files), 2);
  names.close();
});

test('an inode no scan finds asks for another scan only after the retry time', async () => {
  const files = node();
  const { names, step } = start(files);
  await step(0);
  names.lookup(9999);
  await step(1000);
  assert.equal(scans(files), 2);
  for (let t = 0; t < 10; t++) {
    names.lookup(9999);
    await step(1000);
  }
  assert.equal(scans(files), 2, 'a namespace nobody can name does not cost a scan a second');
  names.lookup(9999);
  await step(1000);
  assert.equal(scans(files), 3);
  names.close();
});

test('a recycled inode: the old name goes once its process is gone, and the new namespace is named', async () => {
  const files = node().process(90, { netns: 7400, cgroup: fixture('docker-v2.cgroup'), start: '500' });
  files.files.set(`/var/lib/docker/containers/${ID}/config.v2.json`, '{"Name":"/old"}');
  const { names, step } = start(files);
  await step(0);
  assert.equal(names.lookup(7400).containerName, 'old');
  // The container dies; a new namespace gets the same inode, holding a process in no container.
  files.exit(90);
  files.process(91, { netns: 7400, start: '900' });
  await step(1000);
  assert.deepEqual(names.lookup(7400), { netns: 7400, ...NOBODY }, 'the re-check dropped the old name');
  await step(1000);
  assert.deepEqual(names.lookup(7400), { netns: 7400, ...NOBODY }, 'named anew: a plain process, no container');
  assert.ok(scans(files) >= 2);
  names.close();
});

test('a recycled inode and a reused pid: the start time tells them apart', async () => {
  const files = node().process(90, { netns: 7400, cgroup: fixture('docker-v2.cgroup'), start: '500' });
  files.files.set(`/var/lib/docker/containers/${ID}/config.v2.json`, '{"Name":"/old"}');
  const { names, step } = start(files);
  await step(0);
  assert.equal(names.lookup(7400).containerName, 'old');
  files.process(90, { netns: 7400, start: '901' });
  await step(1000);
  assert.equal(names.lookup(7400).containerName, null);
  names.close();
});

test('a recycled inode under a removed and re-added ip netns name: the file is re-checked too', async () => {
  const files = node().ipNetns('a', 7500);
  const { names, step } = start(files);
  await step(0);
  assert.equal(names.lookup(7500).netnsName, 'a');
  files.inodes.delete('/run/netns/a');
  files.ipNetns('b', 7500);
  await step(1000);
  assert.equal(names.lookup(7500).netnsName, null);
  await step(1000);
  assert.equal(names.lookup(7500).netnsName, 'b');
  names.close();
});

test('a name not re-checked lately is re-checked at its lookup: shown at once if it holds, else dropped', async () => {
  const files = node().ipNetns('a', 7500).process(90, { netns: 7600, start: '500' }).ipNetns('gone', 7600);
  const { names, timers, step } = start(files);
  await step(0);
  assert.equal(names.lookup(7500).netnsName, 'a');
  assert.equal(names.lookup(7600).netnsName, 'gone');
  await step(60_000);
  assert.equal(timers.waiting, 0, 'nothing looked up for a while: no timer runs');
  // A run whose first drops come long after its start (one summary at stop) still names what was found at start.
  assert.equal(names.lookup(7500).netnsName, 'a', 'its file still names the inode');
  // The other namespace was removed meanwhile and its inode given to a new one: never shown under the old name.
  files.exit(90);
  files.inodes.delete('/run/netns/gone');
  files.process(91, { netns: 7600, start: '900' });
  assert.equal(names.lookup(7600).netnsName, null, 'the witness is gone: no name');
  await step(1000);
  assert.deepEqual(names.lookup(7600), { netns: 7600, ...NOBODY }, 'scanned anew: a plain process');
  names.close();
});

test('the cache is bounded: the least recently looked up go first, those asked for stay', async () => {
  const files = node();
  for (let i = 0; i < 10; i++) files.process(100 + i, { netns: 8000 + i });
  const { names, step } = start(files, { maxNamespaces: 4 });
  await step(0);
  assert.equal(names.size, 4);
  files.process(200, { netns: 8100 });
  names.lookup(8100);
  await step(1000);
  assert.equal(names.size, 4);
  assert.equal(names.lookup(8100).netns, 8100);
  assert.ok(files.count('/proc/200/stat') >= 1, 'the namespace asked for was resolved');
  const before = scans(files);
  names.lookup(8100);
  await step(1000);
  assert.equal(scans(files), before, 'and kept: asking again costs no scan');
  names.close();
});

test('processes exiting mid-scan and unreadable files are left out, the rest named', async () => {
  const files = node()
    .process(300, { netns: 8200 })
    .process(301, { netns: 8201, cgroup: fixture('docker-v2.cgroup') })
    .process(302, { netns: 8202 })
    .ipNetns('locked', 8203);
  files.failing.set('/proc/300/ns/net', 'ESRCH');
  files.failing.set('/proc/301/cgroup', 'ENOENT');
  files.failing.set('/proc/302/stat', 'ESRCH');
  files.failing.set('/var/lib/docker/containers', 'EACCES');
  files.failing.set('/run/containers/storage/overlay-containers/containers.json', 'EACCES');
  files.failing.set('/run/netns/locked', 'EACCES');
  files.ipNetns('fine', 8204);
  const { names, step } = start(files);
  await step(0);
  assert.equal(names.lookup(8204).netnsName, 'fine');
  assert.equal(names.lookup(8201).container, null, 'its cgroup was unreadable');
  assert.equal(names.lookup(HOST).netnsName, 'host');
  assert.equal(names.size, 3, 'host, fine and 8201');
  names.close();
});

test('close() stops every timer; lookups still answer from what is known', async () => {
  const files = node().ipNetns('a', 7500);
  const { names, timers, step } = start(files);
  await step(0);
  names.lookup(7500);
  names.lookup(12345);
  names.close();
  assert.equal(timers.waiting, 0);
  assert.equal(names.lookup(7500).netnsName, 'a');
  assert.equal(timers.waiting, 0);
});

test('importing the factory loads nothing heavy: only node built-ins and this folder', () => {
  const sources = ['index', 'resolver', 'scan', 'names', 'files', 'cgroup', 'annotations', 'stores', 'proc'].map((f) =>
    readFileSync(join(projectRoot, 'src', 'workload', `${f}.ts`), 'utf8'),
  );
  for (const source of sources)
    for (const [, from] of source.matchAll(/^import .* from '([^']+)';$/gm))
      assert.ok(from!.startsWith('node:') || from!.startsWith('./'), from);
});

/** Type-level: the factory's result is the seam. */
export const seam: (r: WorkloadResolver) => import('../../src/workload/types.js').WorkloadNames = (r) => r;
