// Another root process switching our private instance off in ways other than the event's `enable`: tracing_on, a
// traceoff trigger on our event, a disable_event trigger on another event, a pid filter, a narrowed CPU mask. Each is
// said once within a second, put back, and the drops made after the repair are counted (at least: other processes'
// drops may add).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs';
import { openTracefsBackend, type TracefsBackend } from '../../src/tracefs/index.js';
import type { BackendEvent } from '../../src/backend/types.js';
import { canRunKernelTests, ourInstances, symbolRange, TEST_PREFIX, TRACEFS } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();

/** NO_SOCKET drops counted in summary entries inside `range`. */
function counted(events: BackendEvent[], range: [bigint, bigint]): number {
  let n = 0;
  for (const e of events)
    if (e.kind === 'summary')
      for (const x of e.entries) if (x.reason === 'NO_SOCKET' && x.pc >= range[0] && x.pc < range[1]) n += x.count;
  return n;
}

/** The lines of a trigger file that are triggers (the kernel lists the available ones as comments when none is set). */
function triggers(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

describe('switches that silence our tracefs instance, set from outside', { skip }, () => {
  let ns: Netns;
  let udp4: [bigint, bigint];

  before(() => {
    ns = new Netns();
    udp4 = symbolRange('__udp4_lib_rcv')!;
  });

  after(() => {
    ns?.delete();
    for (const n of ourInstances()) fs.rmdirSync(`${TRACEFS}/instances/${n}`); // only if a test failed mid-way
  });

  /**
   * Starts monitoring, lets `tamper` silence the instance, waits 1.5 s (the check runs each second), then sends 100
   * drops. Returns the warnings and what was counted.
   */
  async function tampered(
    tamper: (b: TracefsBackend, dir: string) => Promise<void>,
    check: (dir: string) => void,
  ): Promise<{ warnings: string[]; drops: number }> {
    const warnings: string[] = [];
    const b = await openTracefsBackend({ instancePrefix: TEST_PREFIX, onWarning: (w) => warnings.push(w) });
    const events: BackendEvent[] = [];
    b.onEvent((e) => events.push(e));
    try {
      await b.start({ sw: true, hw: false });
      const dir = b.instance!.dir;
      await tamper(b, dir);
      await sleep(1500);
      check(dir);
      await ns.sendUdp('127.0.0.1', 100);
      await b.stop();
    } finally {
      await b.close();
    }
    return { warnings, drops: counted(events, udp4) };
  }

  const from = (what: RegExp) => (w: string) =>
    what.test(w) && /in our tracefs instance \(dwtest-\d+\) from outside; /.test(w);

  test('tracing_on switched off: said once within a second, switched back on, later drops counted', async () => {
    const { warnings, drops } = await tampered(
      async (_b, dir) => fs.writeFileSync(`${dir}/tracing_on`, '0'),
      (dir) => assert.equal(fs.readFileSync(`${dir}/tracing_on`, 'utf8').trim(), '1', 'switched back on'),
    );
    assert.equal(warnings.filter(from(/^tracing was switched off/)).length, 1, warnings.join(' | '));
    assert.equal(warnings.length, 1, warnings.join(' | '));
    assert.ok(drops >= 100, `${drops} counted of 100 sent after the repair`);
  });

  test('a traceoff trigger on our event: said once, removed, tracing back on, later drops counted', async () => {
    const { warnings, drops } = await tampered(
      async (_b, dir) => {
        fs.writeFileSync(`${dir}/events/skb/kfree_skb/trigger`, 'traceoff');
        await ns.sendUdp('127.0.0.1', 5); // the first drop fires it
        assert.equal(fs.readFileSync(`${dir}/tracing_on`, 'utf8').trim(), '0', 'the trigger switched tracing off');
      },
      (dir) => {
        assert.deepEqual(triggers(`${dir}/events/skb/kfree_skb/trigger`), [], 'trigger removed');
        assert.equal(fs.readFileSync(`${dir}/tracing_on`, 'utf8').trim(), '1', 'tracing back on');
      },
    );
    assert.equal(
      warnings.filter(from(/^a trigger \(traceoff\) was set on skb:kfree_skb/)).length,
      1,
      warnings.join(' | '),
    );
    assert.equal(warnings.length, 1, `one line: ${warnings.join(' | ')}`);
    assert.ok(drops >= 100, `${drops} counted of 100 sent after the repair`);
  });

  test('a disable_event trigger on another event of our instance: said once, removed, our event back on', async () => {
    const { warnings, drops } = await tampered(
      async (_b, dir) => {
        // sched_switch fires all the time, so our event is soft-disabled at once.
        fs.writeFileSync(`${dir}/events/sched/sched_switch/trigger`, 'disable_event:skb:kfree_skb');
        await sleep(50);
        assert.match(fs.readFileSync(`${dir}/events/skb/kfree_skb/enable`, 'utf8'), /^0\*/, 'soft-disabled');
      },
      (dir) => {
        assert.deepEqual(triggers(`${dir}/events/sched/sched_switch/trigger`), [], 'trigger removed');
        assert.equal(fs.readFileSync(`${dir}/events/skb/kfree_skb/enable`, 'utf8').trim(), '1', 'enabled again');
        assert.equal(fs.readFileSync(`${dir}/set_event`, 'utf8').trim(), 'skb:kfree_skb', 'nothing else enabled');
      },
    );
    assert.equal(
      warnings.filter(from(/^a trigger \(disable_event:skb:kfree_skb\) was set on sched:sched_switch/)).length,
      1,
      warnings.join(' | '),
    );
    assert.equal(warnings.length, 1, `one line: ${warnings.join(' | ')}`);
    assert.ok(drops >= 100, `${drops} counted of 100 sent after the repair`);
  });

  test('a pid filter (set_event_pid, set_event_notrace_pid): said once each, cleared, later drops counted', async () => {
    const { warnings, drops } = await tampered(
      async (_b, dir) => {
        fs.writeFileSync(`${dir}/set_event_pid`, '1'); // only init's drops
        fs.writeFileSync(`${dir}/set_event_notrace_pid`, String(process.pid));
      },
      (dir) => {
        assert.equal(fs.readFileSync(`${dir}/set_event_pid`, 'utf8').trim(), '', 'cleared');
        assert.equal(fs.readFileSync(`${dir}/set_event_notrace_pid`, 'utf8').trim(), '', 'cleared');
      },
    );
    assert.equal(warnings.filter(from(/^a pid filter \(set_event_pid\) was set/)).length, 1, warnings.join(' | '));
    assert.equal(warnings.filter(from(/^a pid filter \(set_event_notrace_pid\) was set/)).length, 1);
    assert.equal(warnings.length, 2, warnings.join(' | '));
    assert.ok(drops >= 100, `${drops} counted of 100 sent after the repair`);
  });

  test('tracing_cpumask narrowed: said once, put back, later drops counted', async () => {
    const all = fs.readFileSync(`${TRACEFS}/tracing_cpumask`, 'utf8').trim();
    const { warnings, drops } = await tampered(
      async (_b, dir) => fs.writeFileSync(`${dir}/tracing_cpumask`, '0'),
      (dir) => assert.equal(fs.readFileSync(`${dir}/tracing_cpumask`, 'utf8').trim(), all, 'put back'),
    );
    assert.equal(
      warnings.filter(from(/^the CPU mask \(tracing_cpumask\) was changed/)).length,
      1,
      warnings.join(' | '),
    );
    assert.equal(warnings.length, 1, warnings.join(' | '));
    assert.ok(drops >= 100, `${drops} counted of 100 sent after the repair`);
  });

  test('another event enabled in our instance: said once, switched off', async () => {
    const warnings: string[] = [];
    const b = await openTracefsBackend({ instancePrefix: TEST_PREFIX, onWarning: (w) => warnings.push(w) });
    const events: BackendEvent[] = [];
    b.onEvent((e) => events.push(e));
    try {
      await b.start({ sw: true, hw: false });
      const dir = b.instance!.dir;
      fs.writeFileSync(`${dir}/events/sched/sched_switch/enable`, '1');
      await sleep(1500);
      assert.equal(fs.readFileSync(`${dir}/set_event`, 'utf8').trim(), 'skb:kfree_skb');
      await b.stop();
    } finally {
      await b.close();
    }
    assert.equal(warnings.filter(from(/^sched:sched_switch was enabled/)).length, 1, warnings.join(' | '));
    assert.equal(warnings.length, 1, warnings.join(' | '));
  });
});
