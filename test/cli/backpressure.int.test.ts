// A reader that cannot keep up with a packet-mode flood: memory stays bounded, every drop is printed or reported lost,
// and -d still ends the run on time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { RSS_BOUND_KIB, runStalled, type Consumer, type StalledRun } from '../../bench/lib/stalled.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;
before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

const DURATION_S = 6;
const SENT = 200_000;
// Each backend with a packet path bounds its reader alike: tracefs in its reader thread, bpf a slice per event-loop turn.
const BACKENDS = ['tracefs', 'bpf'] as const;
const argsFor = (backend: string): string[] => [
  '-b',
  backend,
  '-m',
  'packet',
  '-f',
  'json',
  '--filter',
  'reason == NO_SOCKET',
];

const run = (backend: string, consumer: Consumer): Promise<StalledRun> =>
  runStalled({ ns: ns!, args: argsFor(backend), consumer, count: SENT, durationS: DURATION_S });

/** Every `Lost N drop events` line on stderr, summed as a log reader would: each loss is said once, in that form. */
const lostLines = (stderr: string): number =>
  [...stderr.matchAll(/^Lost (\d+) drop events /gm)].reduce((n, m) => n + Number(m[1]), 0);

function check(o: StalledRun): void {
  assert.equal(o.code, 0, o.stderr);
  assert.equal(o.sent, SENT);
  assert.equal(lostLines(o.stderr), o.lostOutput + o.lostElsewhere, o.stderr);
  // A JSON line is whole or absent, however the reader stalled.
  assert.equal(o.cut, '', `the output ends inside a line: ${JSON.stringify(o.cut.slice(0, 80))}`);
  // Other tasks' drops at the same place may add a few.
  const made = o.printed + lostLines(o.stderr);
  assert.ok(made >= SENT && made < SENT * 1.01, `printed ${o.printed} + lost ${lostLines(o.stderr)}\n${o.stderr}`);
  assert.ok(o.peakKiB < RSS_BOUND_KIB, `peak RSS ${o.peakKiB} KiB`);
  // Measured from when we saw monitoring start, which is after the -d timer was set.
  assert.ok(o.runMs < (DURATION_S + 1) * 1000, `ran ${o.runMs} ms for -d ${DURATION_S}`);
}

for (const backend of BACKENDS) {
  test(
    `-b ${backend} packet mode, a reader that stalls: bounded memory, printed + lost = made, -d on time`,
    { skip },
    async () => {
      const o = await run(backend, 'stalled pipe');
      check(o);
      assert.ok(o.lostOutput > 0, 'the reader fell behind');
      assert.match(
        o.stderr,
        /^Lost \d+ drop events that dropwatch could not print: the reader of its output fell behind$/m,
      );
      assert.match(
        o.stderr,
        /^In total, \d+ drop events were lost: dropwatch could not print them, the reader of its output fell behind$/m,
      );
      // Written but never taken when the run ended: the last loss, a `Lost` line like the others.
      assert.match(
        o.stderr,
        /^Lost \d+ drop events that dropwatch wrote but the reader of standard output never took$/m,
      );
    },
  );

  test(
    `-b ${backend} packet mode into a file: bounded memory, printed + lost = made, -d on time`,
    { skip },
    async () => {
      check(await run(backend, 'file'));
    },
  );
}
