// A task's cgroup v2 id to its path and container, over a scripted hierarchy: the mount found in mountinfo, one walk
// for many lookups, another only when an unknown id appears (rate-limited), the walk bounded; and the merge that names
// a host-network container by its task's cgroup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CgroupResolver, walkCgroups } from '../../src/workload/cgroups.js';
import { parseCgroup2Mount } from '../../src/workload/cgroup.js';
import type { CgroupTreeFiles } from '../../src/workload/files.js';
import { withTaskCgroup } from '../../src/workload/task.js';
import { fixturePath } from '../helpers/paths.js';
import { ManualTimers, ScriptedFiles } from './scripted.js';

// This machine's mountinfo (v1 hybrid): the v2 hierarchy beside the v1 controllers.
const HYBRID = `31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`;
const ROOT = '/sys/fs/cgroup/unified';
const PODMAN = readFileSync(fixturePath('workload', 'podman.id'), 'utf8').trim();

test('mountinfo: the v2 hierarchy on the hybrid layout, on v2 alone, its root before a sub-tree, none without', () => {
  assert.equal(parseCgroup2Mount(HYBRID), ROOT);
  assert.equal(
    parseCgroup2Mount('29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n'),
    '/sys/fs/cgroup',
  );
  const both =
    '50 1 0:26 /kubepods /mnt/sub rw - cgroup2 cgroup2 rw\n51 1 0:26 / /mnt/my\\040cgroup rw - cgroup2 none rw\n';
  assert.equal(parseCgroup2Mount(both), '/mnt/my cgroup');
  assert.equal(parseCgroup2Mount('50 1 0:26 /kubepods /mnt/sub rw - cgroup2 cgroup2 rw\n'), '/mnt/sub');
  assert.equal(parseCgroup2Mount(HYBRID.split('\n')[0]!), null);
  assert.equal(parseCgroup2Mount(''), null);
});

/** Directories by path (from the hierarchy's root) with their inodes; every read counted. */
class ScriptedTree implements CgroupTreeFiles {
  readonly dirs = new Map<string, number>([['/', 1]]);
  reads = 0;
  mountinfo = HYBRID;
  add(path: string, ino: number): this {
    this.dirs.set(path, ino);
    return this;
  }
  private rel(abs: string): string {
    if (!abs.startsWith(ROOT)) throw Object.assign(new Error(`ENOENT: ${abs}`), { code: 'ENOENT' });
    return abs === ROOT ? '/' : abs.slice(ROOT.length);
  }
  async readFile(path: string): Promise<string> {
    assert.equal(path, '/proc/self/mountinfo');
    return this.mountinfo;
  }
  async subdirs(path: string): Promise<string[]> {
    this.reads++;
    const rel = this.rel(path);
    const prefix = rel === '/' ? '/' : `${rel}/`;
    return [...this.dirs.keys()]
      .filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
      .map((p) => p.slice(prefix.length));
  }
  async inode(path: string): Promise<number> {
    const ino = this.dirs.get(this.rel(path));
    if (ino === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return ino;
  }
}

function start(tree: ScriptedTree, files = new ScriptedFiles(), maxCgroups = 100) {
  const timers = new ManualTimers();
  const cgroups = new CgroupResolver({
    tree,
    files,
    timers,
    now: timers.now,
    maxCgroups,
    walkIntervalMs: 1000,
    retryMs: 10_000,
  });
  const step = async (ms: number): Promise<void> => {
    timers.advance(ms);
    await cgroups.settled();
  };
  return { cgroups, step };
}

test('walk: every directory by inode, as a path from the root; bounded', async () => {
  const tree = new ScriptedTree().add('/a', 20).add('/a/b', 21).add('/c', 30);
  assert.deepEqual(
    await walkCgroups(tree, ROOT, 100),
    new Map([
      [1, '/'],
      [20, '/a'],
      [30, '/c'],
      [21, '/a/b'],
    ]),
  );
  assert.equal((await walkCgroups(tree, ROOT, 2)).size, 2);
});

test('an id is found by the walk made at start; a Podman container is named by its ID and its store', async () => {
  const tree = new ScriptedTree()
    .add('/libpod_parent', 25)
    .add(`/libpod_parent/libpod-${PODMAN}`, 519)
    .add('/mine', 600);
  const files = new ScriptedFiles();
  const fixture = (name: string) => readFileSync(fixturePath('workload', name), 'utf8');
  files.files.set('/var/lib/containers/storage/overlay-containers/containers.json', fixture('podman-containers.json'));
  const { cgroups, step } = start(tree, files);
  assert.equal(cgroups.lookup(600).path, null, 'before the first walk');
  await step(0);
  assert.deepEqual(cgroups.lookup(600), {
    id: 600,
    path: '/mine',
    container: null,
    containerName: null,
    pod: null,
    podUid: null,
  });
  // The ID at once, its name once the runtime's files are read.
  assert.equal(cgroups.lookup(519).container, PODMAN);
  await step(0);
  assert.deepEqual(cgroups.lookup(519), {
    id: 519,
    path: `/libpod_parent/libpod-${PODMAN}`,
    container: PODMAN,
    containerName: 'dwtest-try',
    pod: null,
    podUid: null,
  });
  assert.equal(cgroups.lookup(1).path, '/');
  cgroups.close();
});

test('an unknown id asks for one more walk, at most one a second; one not found waits before asking again', async () => {
  const tree = new ScriptedTree().add('/a', 20);
  const { cgroups, step } = start(tree);
  await step(0);
  const walks = tree.reads;
  tree.add('/new', 700);
  for (let i = 0; i < 50; i++) assert.equal(cgroups.lookup(700).path, null);
  await step(0);
  assert.equal(tree.reads, walks, 'no second walk within a second of the first');
  await step(1000);
  assert.equal(tree.reads, walks * 2 + 1, 'one walk, with the new directory');
  assert.equal(cgroups.lookup(700).path, '/new');
  const after = tree.reads;
  cgroups.lookup(999);
  await step(1000);
  assert.ok(tree.reads > after, 'a walk for 999');
  const missed = tree.reads;
  cgroups.lookup(999);
  await step(5000);
  assert.equal(tree.reads, missed, 'not found: no walk again before the retry time');
  cgroups.close();
});

test('no v2 hierarchy mounted: every id unknown, no walk', async () => {
  const tree = new ScriptedTree();
  tree.mountinfo = HYBRID.split('\n')[0]!;
  const { cgroups, step } = start(tree);
  await step(0);
  assert.equal(cgroups.lookup(1).path, null);
  assert.equal(tree.reads, 0);
  cgroups.close();
});

test("a namespace that names no container takes the task's cgroup's; one that names one keeps it", () => {
  const host = { netns: 1, netnsName: 'host', container: null, containerName: null, pod: null, podUid: null };
  const task = { id: 519, path: '/x', container: PODMAN, containerName: 'web', pod: null, podUid: null };
  assert.deepEqual(withTaskCgroup(host, task), { ...host, container: PODMAN, containerName: 'web' });
  assert.equal(withTaskCgroup(host, null), host);
  assert.equal(withTaskCgroup(host, { ...task, container: null, containerName: null }), host);
  const named = { ...host, netnsName: null, container: 'c0ffee', containerName: 'cart' };
  assert.equal(withTaskCgroup(named, task), named);
});
