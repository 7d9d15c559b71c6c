// Call chains on the bpf source through the built CLI (`-b bpf --stack`) on the real kernel: UDP drops in a namespace
// this test creates carry the callers behind __udp4_lib_rcv (in text, in JSON and on packets), and a flood far past
// the per-second budget is still counted exactly in that namespace while its chains stay within the budget.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { CliRun, SUMMARY_LINE } from '../helpers/cli.js';
import { validateEvent } from '../helpers/schema.js';
import { sendDrops } from '../../bench/lib/sender.js';

const skip = canRunKernelTests();
/** The chain budget the bpf source keeps by default, chains a second. */
const BUDGET = 1000;

interface Frame {
  symbol: string | null;
}
interface Json {
  type: string;
  time?: string;
  symbol?: string | null;
  reason?: string | null;
  count?: number;
  lost?: number;
  places?: { netns: number | null; count: number }[];
  stacks?: { sampled: number; chains: { count: number; frames: Frame[] }[] };
  netns?: number | null;
  stack?: Frame[] | null;
}

const parse = (stdout: string): Json[] =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Json);

describe('bpf call chains on the real kernel', { skip }, () => {
  let ns: Netns;
  let ours: string;

  before(() => {
    ns = new Netns();
    // The kernel filter keeps only our namespace's drops: counts are then exact, and others' drops take no chains.
    ours = `reason == NO_SOCKET && netns == ${ns.inode}`;
  });
  after(() => ns.delete());

  /** A run of the CLI with `args` while `body` makes drops; SIGINT after `settleMs`, its output once it exited. */
  async function monitored(args: string[], body: () => Promise<unknown>, settleMs = 1200) {
    const run = new CliRun(['-b', 'bpf', ...args]);
    try {
      await run.monitoring();
      await body();
      await sleep(settleMs);
      run.kill('SIGINT');
      const done = await run.done;
      assert.equal(done.code, 0, done.stderr);
      return done;
    } finally {
      if (run.child.exitCode === null) run.kill('SIGKILL');
    }
  }

  test('text: the __udp4_lib_rcv line, its count exact, carries chains through ip_local_deliver_finish', async () => {
    const n = 300;
    const done = await monitored(['-s', '-l', 'kas', '--stack', '--filter', ours], () => ns.sendUdp('127.0.0.1', n));
    let counted = 0;
    let sampled = 0;
    const chains: string[] = [];
    for (const line of done.stdout.split('\n')) {
      const m = SUMMARY_LINE.exec(line);
      if (m) assert.equal(m[2], '__udp4_lib_rcv', line);
      if (m) counted += Number(m[1]);
      const head = /^ {2}call chains of (\d+) sampled drops?:$/.exec(line);
      if (head) sampled += Number(head[1]);
      if (/^ {4}\s*\d+ {2}\S/.test(line)) chains.push(line);
      // Lines a log parser reads stay dropwatch's: every unindented line is a summary line.
      if (line && !line.startsWith(' ')) assert.match(line, SUMMARY_LINE);
    }
    assert.equal(counted, n, done.stdout);
    // Far below the budget: every drop is sampled, and none is unwound twice.
    assert.equal(sampled, n, done.stdout);
    assert.ok(
      chains.some((l) =>
        /^ {4}\s*\d+ {2}ip_protocol_deliver_rcu\+[0-9a-f]+ < ip_local_deliver_finish\+[0-9a-f]+ < __netif_receive_skb/.test(
          l,
        ),
      ),
      chains.join('\n'),
    );
  });

  test('JSON: the same chains as frames, valid against the schema, sampled never more than counted', async () => {
    const done = await monitored(['-s', '--stack', '-f', 'json', '--filter', ours], () => ns.sendUdp('127.0.0.1', 100));
    const events = parse(done.stdout);
    for (const e of events) assert.deepEqual(validateEvent(e), [], JSON.stringify(e));
    const udp = events.filter((e) => e.type === 'summary' && e.symbol === '__udp4_lib_rcv');
    assert.equal(
      udp.reduce((n, e) => n + e.count!, 0),
      100,
    );
    const frames = udp.flatMap((e) => e.stacks?.chains ?? []).map((c) => c.frames.map((f) => f.symbol));
    assert.ok(frames.length > 0, done.stdout);
    for (const f of frames) assert.deepEqual(f.slice(0, 2), ['ip_protocol_deliver_rcu', 'ip_local_deliver_finish']);
    for (const e of udp) assert.ok((e.stacks?.sampled ?? 0) <= e.count!, JSON.stringify(e));
  });

  test('-m packet --stack: each of our packets carries its chain', async () => {
    const n = 20;
    const done = await monitored(['-s', '-m', 'packet', '--stack', '-f', 'json', '--filter', ours], () =>
      ns.sendUdp('127.0.0.1', n),
    );
    const packets = parse(done.stdout).filter((e) => e.type === 'packet');
    assert.equal(packets.length, n, done.stdout.slice(0, 2000));
    for (const p of packets) {
      assert.equal(p.netns, ns.inode);
      assert.deepEqual(
        p.stack?.slice(0, 2).map((f) => f.symbol),
        ['ip_protocol_deliver_rcu', 'ip_local_deliver_finish'],
        JSON.stringify(p),
      );
    }
  });

  test('a flood past the budget: every drop counted in our namespace, nothing lost, chains within the budget', async () => {
    const sent = 1_000_000;
    const started = Date.now();
    const done = await monitored(['-s', '--stack', '-f', 'json', '--filter', ours], async () => {
      const result = await sendDrops(ns, sent);
      assert.equal(result.sent, sent);
    });
    const seconds = (Date.now() - started) / 1000;
    const events = parse(done.stdout);
    const lost = events.filter((e) => e.type === 'lost').reduce((n, e) => n + e.lost!, 0);
    assert.equal(lost, 0, `lost ${lost}\n${done.stderr}`);
    const summaries = events.filter((e) => e.type === 'summary');
    const counted = summaries
      .flatMap((e) => e.places ?? [])
      .filter((p) => p.netns === ns.inode)
      .reduce((n, p) => n + p.count, 0);
    assert.equal(counted, sent, 'every drop once, sampled or not');
    const sampled = summaries.reduce((n, e) => n + (e.stacks?.sampled ?? 0), 0);
    assert.ok(sampled > 0, 'chains were sampled');
    // At most the budget in each second the run saw (and the CPUs that raced for the last chain of one).
    const bound = (BUDGET + cpus().length) * (Math.ceil(seconds) + 1);
    assert.ok(sampled <= bound, `${sampled} chains sampled in ${seconds.toFixed(1)} s (bound ${bound})`);
    assert.ok(sampled < counted / 10, `${sampled} of ${counted} drops sampled`);
  });
});
