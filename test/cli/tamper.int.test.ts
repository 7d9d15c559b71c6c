// Tracing switched off in a run's instance from outside, as a hostile sysadmin would (`echo 0 > tracing_on`, or a
// traceoff trigger on our event): the run says so on stderr within a second, switches it back on, and counts the
// drops made after that; it still exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { CliRun, countDrops } from '../helpers/cli.js';
import { canRunKernelTests, TRACEFS } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

for (const [what, silence, said] of [
  [
    'echo 0 > tracing_on',
    'tracing_on',
    /^tracing was switched off in our tracefs instance \(dropwatch-\d+\) from outside; switched back on: drops in between were not seen$/m,
  ],
  [
    'a traceoff trigger on our event',
    'trigger',
    /^a trigger \(traceoff\) was set on skb:kfree_skb in our tracefs instance \(dropwatch-\d+\) from outside; removed, and tracing switched back on: drops in between were not seen$/m,
  ],
] as const) {
  test(`${what}: said within a second, switched back on, later drops counted, exit 0`, { skip }, async () => {
    const run = new CliRun(['-b', 'tracefs', '-s', '-l', 'kas', '--filter', 'reason == NO_SOCKET']);
    try {
      await run.monitoring();
      const dir = `${TRACEFS}/instances/dropwatch-${run.child.pid}`;
      await ns!.sendUdp('127.0.0.1', 1000);
      if (silence === 'tracing_on') writeFileSync(`${dir}/tracing_on`, '0');
      else {
        writeFileSync(`${dir}/events/skb/kfree_skb/trigger`, 'traceoff');
        await ns!.sendUdp('127.0.0.1', 1); // fires it
      }
      assert.equal(readFileSync(`${dir}/tracing_on`, 'utf8').trim(), '0', 'tracing is off');
      await run.until('the tamper line', () => said.test(run.stderr), 1500);
      await ns!.sendUdp('127.0.0.1', 1999);
      run.kill('SIGINT');
      const done = await run.done;
      assert.equal(done.code, 0, done.stderr);
      assert.equal(done.stderr.match(new RegExp(said.source, 'gm'))?.length, 1, done.stderr);
      const drops = countDrops(done.stdout, '__udp4_lib_rcv', 'NO_SOCKET');
      assert.ok(drops >= 2999, `${drops} counted, 1000 before the switch and 1999 after the repair`);
    } finally {
      run.kill('SIGKILL');
    }
  });
}
