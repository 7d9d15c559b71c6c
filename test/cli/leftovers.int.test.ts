// What a killed dropwatch leaves behind, and that the next run cleans it up: SIGKILL cannot be caught, so a run killed
// while monitoring leaves its private instance `dropwatch-<pid>` (with kfree_skb still enabled in it); the next run
// must reclaim it and work normally. Global tracefs state must be as found throughout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { CliRun, countDrops } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf, tracefsSnapshot, TRACEFS } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

const instance = (pid: number) => `${TRACEFS}/instances/dropwatch-${pid}`;

/** Starts a run that monitors, SIGKILLs it, and returns the pid whose instance it left. */
async function killedWhileMonitoring(args: readonly string[], piped: string | null): Promise<number> {
  const run = new CliRun(args.includes('-b') ? args : ['-b', 'tracefs', ...args]);
  const pid = run.child.pid!;
  try {
    if (piped !== null) run.write(piped);
    await run.monitoring();
    run.kill('SIGKILL');
    const done = await run.done;
    assert.equal(done.signal, 'SIGKILL');
    return pid;
  } finally {
    run.kill('SIGKILL');
  }
}

for (const [name, args, piped] of [
  ['the REPL', ['-l', 'kas'], 'start\n'],
  ['-s', ['-s', '-l', 'kas'], null],
] as const) {
  test(
    `SIGKILL while monitoring (${name}) leaves dropwatch-<pid>; the next run reclaims it and works`,
    { skip },
    async () => {
      const snapshot = tracefsSnapshot();
      const dead = await killedWhileMonitoring(args, piped);
      // Checked at once: only another dropwatch starting on this machine in these few milliseconds could reclaim it.
      assert.ok(existsSync(instance(dead)), 'SIGKILL leaves the instance (else this test proves nothing)');
      // What makes a leftover costly: the tracepoint still fires into its buffer until someone removes it.
      assert.equal(readFileSync(`${instance(dead)}/events/skb/kfree_skb/enable`, 'utf8').trim(), '1');

      const sent = 80;
      const next = new CliRun(['-b', 'tracefs', '-s', '-l', 'kas', '--filter', 'reason == NO_SOCKET']);
      try {
        await next.monitoring();
        assert.deepEqual(instancesOf(dead), [], 'the dead run’s instance was reclaimed');
        assert.deepEqual(instancesOf(next.child.pid), [`dropwatch-${next.child.pid}`]);
        await ns!.sendUdp('127.0.0.1', sent);
        next.kill('SIGTERM');
        const done = await next.done;
        assert.equal(done.code, 0, done.stderr);
        const counted = countDrops(done.stdout, '__udp4_lib_rcv', 'NO_SOCKET');
        assert.ok(counted >= sent, `the next run works: counted ${counted} < ${sent}\n${done.stdout}`);
        assert.deepEqual(instancesOf(next.child.pid), []);
      } finally {
        next.kill('SIGKILL');
      }
      assert.deepEqual(tracefsSnapshot(), snapshot, 'global tracefs state as found');
    },
  );
}
