// A filter means the same at any length: past the kernel's limit for an event filter it is still counted exactly,
// or refused in one line before anything starts; never run and report nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliRun, runCli } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

/** `protocol == v0 || … || protocol == ipv6`: every value but the last matches none of our IPv6 drops. */
const protocols = (values: readonly number[]): string =>
  [...values.map((v) => `protocol == ${v}`), 'protocol == ipv6'].join(' || ');

/** Consecutive values (0, 1, 2…): runs of them fold into ranges. Odd values (1, 3, 5…): nothing folds. */
const consecutive = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const odd = (n: number): number[] => Array.from({ length: n }, (_, i) => 2 * i + 1);

/** NO_SOCKET drops at __udp6_lib_rcv in a -s -f json run's output. */
function udp6Count(stdout: string): number {
  let total = 0;
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as { type: string; symbol?: string; reason?: string; count?: number };
    if (e.symbol === '__udp6_lib_rcv' && e.reason === 'NO_SOCKET') total += e.type === 'packet' ? 1 : (e.count ?? 0);
  }
  return total;
}

async function counted(filter: string, mode: 'summary' | 'packet', sent: number): Promise<number> {
  const run = new CliRun(['-b', 'tracefs', '-s', '-d', '2', '-m', mode, '-f', 'json', '--filter', filter]);
  await run.monitoring();
  await ns!.sendUdp('::1', sent);
  const done = await run.done;
  assert.equal(done.code, 0, done.stderr);
  assert.doesNotMatch(done.stderr, /can never match|lets every drop through/, done.stderr);
  assert.deepEqual(instancesOf(run.child.pid), []);
  return udp6Count(done.stdout);
}

test('a protocol filter counts every drop it names at 200, 300 and 1000 terms (summary mode)', { skip }, async () => {
  const sent = 100;
  for (const terms of [200, 300, 1000]) {
    const filter = protocols(consecutive(terms - 1));
    assert.ok(terms < 300 || filter.length > 4096, `${terms} terms: ${filter.length} characters`);
    const n = await counted(filter, 'summary', sent);
    console.log(`${terms} terms (${filter.length} characters): sent ${sent}, counted ${n}`);
    assert.ok(n >= sent, `${terms} terms: counted ${n} < ${sent}`);
  }
});

test(
  'a filter too long for the kernel that only the kernel can test in this mode: refused in one line, exit 1',
  { skip },
  async () => {
    const filter = protocols(odd(300));
    const done = await runCli(['-b', 'tracefs', '-s', '-d', '2', '-m', 'summary', '--filter', filter]);
    assert.equal(done.code, 1, done.stderr);
    const lines = done.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, done.stderr);
    assert.match(lines[0]!, /^dropwatch: --filter: .*too long for the kernel.*protocol.*summary mode.*-m packet/);
    assert.equal(done.stdout, '');
    assert.doesNotMatch(done.stderr, /Kernel monitoring activated/);
  },
);

test('the same filter in packet mode, where dropwatch sees the protocol: every drop counted', { skip }, async () => {
  const sent = 100;
  const n = await counted(protocols(odd(300)), 'packet', sent);
  console.log(`300 odd terms, packet mode: sent ${sent}, counted ${n}`);
  assert.ok(n >= sent, `counted ${n} < ${sent}`);
});
