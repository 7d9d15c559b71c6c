// Call chains (--stack) through the built CLI on the real tracefs: real UDP drops in a namespace, the chain under the
// summary line and in JSON, and a flood with stacks on still counted exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliRun, runCli, SUMMARY_LINE } from '../helpers/cli.js';
import { canRunKernelTests, ourInstances } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { validateEvent } from '../helpers/schema.js';
import { sendDrops } from '../../bench/lib/sender.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;
const OURS = 'reason == NO_SOCKET';

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

/** Runs `body` with a monitoring run; whatever happens, the run does not outlive the test. */
async function monitoring<T>(args: string[], body: (run: CliRun) => Promise<T>): Promise<T> {
  const run = new CliRun(args);
  try {
    await run.monitoring();
    return await body(run);
  } finally {
    if (run.child.exitCode === null) run.kill('SIGKILL');
  }
}

/** Each summary line at __udp4_lib_rcv with the chain lines under it. */
function udpBlocks(stdout: string): { count: number; lines: string[] }[] {
  const blocks: { count: number; lines: string[] }[] = [];
  let current: { count: number; lines: string[] } | null = null;
  for (const line of stdout.split('\n')) {
    const m = SUMMARY_LINE.exec(line);
    if (m) {
      current = m[2] === '__udp4_lib_rcv' ? { count: Number(m[1]), lines: [] } : null;
      if (current) blocks.push(current);
    } else if (current && line.startsWith(' ')) current.lines.push(line);
  }
  return blocks;
}

test('-s --stack: the __udp4_lib_rcv line carries its call chain, indented under it', { skip }, async () => {
  const done = await monitoring(['-s', '-d', '4', '--stack', '--filter', OURS], async (run) => {
    await ns!.sendUdp('127.0.0.1', 200);
    return run.done;
  });
  assert.equal(done.code, 0, done.stderr);
  const blocks = udpBlocks(done.stdout);
  const drops = blocks.reduce((n, b) => n + b.count, 0);
  assert.ok(drops >= 200, `${drops} drops at __udp4_lib_rcv < 200\n${done.stdout}`);
  const chains = blocks.flatMap((b) => b.lines.filter((l) => /^ {4}\s*\d+ {2}\S/.test(l)));
  assert.ok(chains.length > 0, `no chain lines\n${done.stdout}`);
  assert.ok(
    chains.some((l) => / {2}ip_protocol_deliver_rcu\+[0-9a-f]+ < ip_local_deliver_finish\+/.test(l)),
    chains.join('\n'),
  );
  for (const b of blocks) {
    const head = /^ {2}call chains of (\d+) sampled drops?:$/.exec(b.lines[0] ?? '');
    assert.ok(head, `block without its header: ${b.lines.join('\n')}`);
    // Sampling never changes a count: the chains stand for some of the line's drops, never more.
    assert.ok(Number(head[1]) <= b.count, `${head[1]} sampled of ${b.count}`);
  }
  // Lines a log parser reads stay dropwatch's: every unindented line is a summary line.
  for (const line of done.stdout.split('\n')) if (line && !line.startsWith(' ')) assert.match(line, SUMMARY_LINE);
  assert.deepEqual(ourInstances('dropwatch'), []);
});

test('-s --stack -f json: the same chain as frames, valid against the schema', { skip }, async () => {
  const done = await monitoring(['-s', '-d', '4', '--stack', '-f', 'json', '--filter', OURS], async (run) => {
    await ns!.sendUdp('127.0.0.1', 200);
    return run.done;
  });
  assert.equal(done.code, 0, done.stderr);
  const events = done.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const e of events) assert.deepEqual(validateEvent(e), [], JSON.stringify(e));
  type Frame = { symbol: string | null; pc: string };
  type Summary = { symbol: string; count: number; stacks?: { sampled: number; chains: { frames: Frame[] }[] } };
  const udp = events.filter((e) => e.type === 'summary' && e.symbol === '__udp4_lib_rcv') as unknown as Summary[];
  const withStacks = udp.filter((e) => e.stacks);
  assert.ok(withStacks.length > 0, done.stdout);
  const frames = withStacks.flatMap((e) => e.stacks!.chains.map((c) => c.frames.map((f) => f.symbol)));
  assert.ok(
    frames.some((f) => f[0] === 'ip_protocol_deliver_rcu' && f.includes('ip_local_deliver_finish')),
    JSON.stringify(frames[0]),
  );
  for (const e of withStacks) assert.ok(e.stacks!.sampled <= e.count);
});

test('-m packet --stack: each sampled packet names its chain and the sending process', { skip }, async () => {
  const done = await monitoring(
    ['-s', '-d', '3', '-m', 'packet', '--stack', '-f', 'json', '--filter', OURS],
    async (run) => {
      await ns!.sendUdp('127.0.0.1', 20);
      return run.done;
    },
  );
  assert.equal(done.code, 0, done.stderr);
  type Packet = { type: string; symbol: string; pid: number | null; comm: string | null; stack: unknown[] | null };
  const packets = done.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Packet)
    .filter((p) => p.type === 'packet' && p.symbol === '__udp4_lib_rcv');
  assert.ok(packets.length >= 20, `${packets.length} packets`);
  // The namespace's sender is a node process: for a loopback drop the running task is the sender.
  assert.ok(
    packets.some((p) => p.comm === 'node' && p.stack !== null && p.stack.length > 3),
    done.stdout.slice(0, 2000),
  );
  assert.ok(packets.every((p) => typeof p.pid === 'number' && p.pid > 0));
});

test('--stack on a flood: every drop counted, nothing lost, chains sampled within the budget', { skip }, async () => {
  const sent = 1_000_000;
  const done = await monitoring(['-s', '--stack', '-f', 'json', '--filter', OURS], async (run) => {
    const result = await sendDrops(ns!, sent);
    assert.equal(result.sent, sent);
    await sleep(1500);
    run.kill('SIGINT');
    return run.done;
  });
  assert.equal(done.code, 0, done.stderr);
  const events = done.stdout
    .trim()
    .split('\n')
    .map(
      (l) =>
        JSON.parse(l) as { type: string; symbol?: string; count?: number; lost?: number; stacks?: { sampled: number } },
    );
  const lost = events.filter((e) => e.type === 'lost').reduce((n, e) => n + (e.lost ?? 0), 0);
  const counted = events
    .filter((e) => e.type === 'summary' && e.symbol === '__udp4_lib_rcv')
    .reduce((n, e) => n + (e.count ?? 0), 0);
  const sampled = events.reduce((n, e) => n + (e.stacks?.sampled ?? 0), 0);
  assert.equal(lost, 0, `lost ${lost}\n${done.stderr}`);
  // At least every drop we made; other tasks' drops at the same place may add a few.
  assert.ok(counted >= sent && counted < sent * 1.01, `counted ${counted} of ${sent}`);
  assert.ok(sampled > 0 && sampled < counted, `sampled ${sampled}`);
});

test('--stack on a backend without chains is a one-line error, and bad values are refused', { skip }, async () => {
  const bad = await runCli(['-l', 'none'], 'set stack maybe\nexit\n');
  assert.match(bad.stderr, /^invalid boolean value for stack: "maybe" \(use true or false\)$/m);
  const help = await runCli(['-l', 'none'], 'help\nexit\n');
  assert.match(help.stdout, /^set stack <true \| false>\t - sample the kernel call chain behind drops/m);
});
