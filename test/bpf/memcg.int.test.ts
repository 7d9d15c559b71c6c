// BPF memory counts against the memory cgroup (Linux 5.11 and later): under a limit that leaves node room to start but
// not dropwatch's maps, the built CLI says so in one line and exits 1 with nothing left; auto goes on to tracefs.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canRunKernelTests } from '../helpers/kernel.js';
import { canUseMemoryCgroups, MemoryCgroup } from '../helpers/memcg.js';
import { bpfDescriptorsOf, bpfObjects, orphanedSince } from '../helpers/bpf-objects.js';
import { CliRun, runCli } from '../helpers/cli.js';

const skip = canRunKernelTests() || canUseMemoryCgroups();

/** Half the packet ring (DW_RING_BYTES): room above node's own charge that no ring fits in. */
const HEADROOM = 8 * 1024 * 1024;
const DROP_CAPS = '-bpf,-perfmon,-sys_admin';
const MAPS_LINE =
  /^dropwatch: the kernel would not create dropwatch's BPF maps \(Cannot allocate memory\): since Linux 5\.11 they count against the memory limit of this process's memory cgroup \((\/[^)]+)\), which leaves too little room; raise that limit or use -b tracefs\n$/;

describe('the bpf source under a memory cgroup limit', { skip }, () => {
  /** The charge the CLI reaches on -b bpf up to its first bpf() call: measured where that call is refused. */
  let ownCharge = 0;

  before(async () => {
    const cg = new MemoryCgroup();
    try {
      const caps = ['setpriv', '--bounding-set', DROP_CAPS, '--inh-caps', DROP_CAPS];
      const r = await runCli(['-b', 'bpf', '-s', '-d', '1'], '', {}, [...cg.prefix, ...caps]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /refused to load a BPF program/);
      ownCharge = cg.maxUsage;
    } finally {
      await cg.delete();
    }
  });

  test('-b bpf: one line naming the cgroup and its limit and -b tracefs, exit 1, nothing of ours left', async (t) => {
    const cg = new MemoryCgroup();
    t.after(() => cg.delete());
    cg.limit = ownCharge + HEADROOM;
    const objects = bpfObjects();
    const r = await runCli(['-b', 'bpf', '-s', '-d', '1'], '', {}, cg.prefix);
    assert.equal(r.signal, null, `killed: the limit ${ownCharge + HEADROOM} left node too little\n${r.stderr}`);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, MAPS_LINE);
    assert.equal(MAPS_LINE.exec(r.stderr)?.[1], cg.name);
    assert.ok(cg.failures > 0, 'the cgroup refused a charge');
    assert.deepEqual(await orphanedSince(objects), { progs: [], maps: [] });
  });

  test('auto: passes over bpf saying why in its one-line notice, runs on tracefs holding no BPF object', async (t) => {
    const cg = new MemoryCgroup();
    t.after(() => cg.delete());
    cg.limit = ownCharge + HEADROOM;
    // tracefs needs more room than bpf left: node waits at the limit (its maps' allocations fail) until it is raised.
    cg.waitAtLimit();
    const objects = bpfObjects();
    const run = new CliRun(['-b', 'auto', '-s'], {}, cg.prefix);
    t.after(() => run.kill('SIGKILL'));
    await run.until('the notice', () => run.stderr.includes('\n'));
    const notice = run.stderr.split('\n')[0]!;
    assert.match(
      notice,
      /^dropwatch: using tracefs \(.*bpf: the memory limit of its memory cgroup leaves no room for its maps\)$/,
    );
    cg.limit = -1;
    await run.monitoring();
    assert.deepEqual(bpfDescriptorsOf(run.child.pid!), [], 'the failed load left no descriptor open');
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    assert.doesNotMatch(done.stderr, /^\s+at /m);
    assert.deepEqual(await orphanedSince(objects), { progs: [], maps: [] });
  });
});
