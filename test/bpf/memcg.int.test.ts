// BPF memory counts against the memory cgroup (Linux 5.11 and later): under a limit that leaves node room to start but
// not dropwatch's maps, the built CLI says so in one line and exits 1 with nothing left; auto goes on to tracefs.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canRunKernelTests } from '../helpers/kernel.js';
import { canUseMemoryCgroups, MemoryCgroup } from '../helpers/memcg.js';
import { bpfDescriptorsOf, bpfObjects, orphanedSince } from '../helpers/bpf-objects.js';
import { CliRun, runCli } from '../helpers/cli.js';

const skip = canRunKernelTests() || canUseMemoryCgroups();

/** Room over node's own charge: half the packet ring (DW_RING_BYTES), so no ring fits. */
const HEADROOM = 8 * 1024 * 1024;
/** Node's own charge varies from run to run (its heap grows with the machine's load): a run it outgrew goes again. */
const STEP = 4 * 1024 * 1024;
const ATTEMPTS = 5;
const DROP_CAPS = '-bpf,-perfmon,-sys_admin';
const MAPS_LINE =
  /^dropwatch: the kernel would not create dropwatch's BPF maps \(Cannot allocate memory\): since Linux 5\.11 they count against the memory limit of this process's memory cgroup \((\/[^)]+)\), which leaves too little room; raise that limit or use -b tracefs\n$/;

/**
 * Runs the CLI in a new memory cgroup limited to `limit` bytes, then STEP more each time the kernel's OOM killer ended
 * it before it said anything (node outgrew the limit before loading the program); `then` sees each run that spoke.
 */
async function underLimit<T>(
  limit: number,
  args: string[],
  then: (run: CliRun, cg: MemoryCgroup) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const cg = new MemoryCgroup();
    cg.limit = limit + attempt * STEP;
    const run = new CliRun(args, {}, cg.prefix);
    const ended = (): boolean => run.child.exitCode !== null || run.child.signalCode !== null;
    try {
      await run.until('a line or an exit', () => run.stderr.includes('\n') || ended(), 30_000);
      if (run.stderr === '' && attempt + 1 < ATTEMPTS) {
        const done = await run.done;
        if (done.signal === 'SIGKILL') continue;
      }
      return await then(run, cg);
    } finally {
      run.kill('SIGKILL');
      await run.done;
      await cg.delete();
    }
  }
}

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

  test('-b bpf: one line naming the cgroup and its limit and -b tracefs, exit 1, nothing of ours left', async () => {
    const objects = bpfObjects();
    await underLimit(ownCharge + HEADROOM, ['-b', 'bpf', '-s', '-d', '1'], async (run, cg) => {
      const r = await run.done;
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, MAPS_LINE);
      assert.equal(MAPS_LINE.exec(r.stderr)?.[1], cg.name);
      assert.ok(cg.failures > 0, 'the cgroup refused a charge');
    });
    assert.deepEqual(await orphanedSince(objects), { progs: [], maps: [] });
  });

  test('auto: passes over bpf saying why in its one-line notice, runs on tracefs holding no BPF object', async () => {
    const objects = bpfObjects();
    await underLimit(ownCharge + HEADROOM, ['-b', 'auto', '-s'], async (run, cg) => {
      cg.limit = -1; // tracefs needs more than bpf left it.
      const notice = run.stderr.split('\n')[0]!;
      assert.match(
        notice,
        /^dropwatch: using tracefs \(.*bpf: the memory limit of its memory cgroup leaves no room for its maps\)$/,
      );
      await run.monitoring(30_000);
      assert.deepEqual(bpfDescriptorsOf(run.child.pid!), [], 'the failed load left no descriptor open');
      run.kill('SIGINT');
      const done = await run.done;
      assert.equal(done.code, 0, done.stderr);
      assert.doesNotMatch(done.stderr, /^\s+at /m);
    });
    assert.deepEqual(await orphanedSince(objects), { progs: [], maps: [] });
  });
});
