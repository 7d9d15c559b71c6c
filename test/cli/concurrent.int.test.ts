// Two dropwatch runs at once on the real tracefs: each has its own private instance, so each sees every drop the test
// makes, and stopping one (which disables the event and removes its instance) leaves the other monitoring untouched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CliRun, countDrops } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf, tracefsSnapshot, TRACEFS } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

test('two runs at once: both count every drop; stopping one leaves the other monitoring', { skip }, async () => {
  const snapshot = tracefsSnapshot();
  const sent = 150;
  // One unattended, one at the piped prompt: the two front ends share nothing but the kernel.
  const a = new CliRun(['-b', 'tracefs', '-s', '-l', 'kas', '--filter', 'reason == NO_SOCKET']);
  const b = new CliRun(['-b', 'tracefs', '-l', 'kas']);
  try {
    b.write('set filter reason == NO_SOCKET\nstart\n');
    await Promise.all([a.monitoring(), b.monitoring()]);
    const pa = a.child.pid!;
    const pb = b.child.pid!;
    assert.deepEqual([instancesOf(pa), instancesOf(pb)], [[`dropwatch-${pa}`], [`dropwatch-${pb}`]]);

    await ns!.sendUdp('127.0.0.1', sent);
    a.kill('SIGTERM');
    const doneA = await a.done;
    assert.equal(doneA.code, 0, doneA.stderr);
    const countedA = countDrops(doneA.stdout, '__udp4_lib_rcv', 'NO_SOCKET');
    assert.ok(countedA >= sent, `first run counted ${countedA} < ${sent}`);
    assert.deepEqual(instancesOf(pa), []);

    // The other run's instance and its enabled event are untouched by the first one's stop.
    assert.deepEqual(instancesOf(pb), [`dropwatch-${pb}`]);
    assert.equal(readFileSync(`${TRACEFS}/instances/dropwatch-${pb}/events/skb/kfree_skb/enable`, 'utf8').trim(), '1');
    assert.equal(b.child.exitCode, null, 'still running');
    await ns!.sendUdp('127.0.0.1', sent);
    b.kill('SIGINT');
    await b.waitFor(/Got a stop message\n/);
    b.end('exit\n');
    const doneB = await b.done;
    assert.equal(doneB.code, 0, doneB.stderr);
    const countedB = countDrops(doneB.stdout, '__udp4_lib_rcv', 'NO_SOCKET');
    assert.ok(countedB >= 2 * sent, `second run counted ${countedB} < ${2 * sent} (both batches)`);
    // Nothing lost in either: no loss lines were printed.
    assert.doesNotMatch(doneA.stderr + doneB.stderr, /^Lost \d+ drop events/m);
    assert.deepEqual(instancesOf(pb), []);
    assert.deepEqual(tracefsSnapshot(), snapshot, 'global tracefs state as found');
  } finally {
    a.kill('SIGKILL');
    b.kill('SIGKILL');
  }
});
