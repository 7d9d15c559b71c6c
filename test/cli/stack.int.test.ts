// Call chains (--stack) through the built CLI on the real kernel, on each source that takes them (tracefs, bpf): real
// UDP drops in a namespace, the chain under the summary line and in JSON; on tracefs also a flood with stacks on still
// counted exactly and its tracefs writes (test/bpf/stack.int.test.ts floods the bpf source).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, CliRun, findDropwatch, runCli, SUMMARY_LINE } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf } from '../helpers/kernel.js';
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

for (const backend of ['tracefs', 'bpf']) {
  test(
    `-b ${backend} -s --stack: the __udp4_lib_rcv line carries its call chain, indented under it`,
    { skip },
    async () => {
      let pid: number | undefined;
      const done = await monitoring(['-b', backend, '-s', '-d', '4', '--stack', '--filter', OURS], async (run) => {
        pid = run.child.pid;
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
      // Its instance and its chain instance are gone (other dropwatch runs on this machine may hold theirs).
      assert.deepEqual(instancesOf(pid), []);
    },
  );

  test(`-b ${backend} -s --stack -f json: the same chain as frames, valid against the schema`, { skip }, async () => {
    const done = await monitoring(
      ['-b', backend, '-s', '-d', '4', '--stack', '-f', 'json', '--filter', OURS],
      async (run) => {
        await ns!.sendUdp('127.0.0.1', 200);
        return run.done;
      },
    );
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
}

test(
  '-b tracefs -m packet --stack: each sampled packet names its chain and the sending process',
  { skip },
  async () => {
    // IPv6 only: another process's IPv4 flood would take the second's budget of chains.
    const done = await monitoring(
      [
        '-b',
        'tracefs',
        '-s',
        '-d',
        '3',
        '-m',
        'packet',
        '--stack',
        '-f',
        'json',
        '--filter',
        `${OURS} && protocol == ipv6`,
      ],
      async (run) => {
        await ns!.sendUdp('::1', 20);
        return run.done;
      },
    );
    assert.equal(done.code, 0, done.stderr);
    type Packet = { type: string; symbol: string; pid: number | null; comm: string | null; stack: unknown[] | null };
    const packets = done.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.type === 'packet' && p.symbol === '__udp6_lib_rcv');
    assert.ok(packets.length >= 20, `${packets.length} packets`);
    // The namespace's sender is a node process: for a loopback drop the running task is the sender.
    assert.ok(
      packets.some((p) => p.comm === 'node' && p.stack !== null && p.stack.length > 3),
      done.stdout.slice(0, 2000),
    );
    assert.ok(packets.every((p) => typeof p.pid === 'number' && p.pid > 0));
  },
);

test(
  '-b tracefs --stack on a flood: every drop counted, nothing lost, chains sampled within the budget',
  { skip },
  async () => {
    const sent = 1_000_000;
    const done = await monitoring(['-b', 'tracefs', '-s', '--stack', '-f', 'json', '--filter', OURS], async (run) => {
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
          JSON.parse(l) as {
            type: string;
            symbol?: string;
            count?: number;
            lost?: number;
            stacks?: { sampled: number };
          },
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
  },
);

/** One write(2) to a tracefs file, from strace -f -T -y: which file, what, and how long the kernel took. */
interface TracefsWrite {
  path: string;
  data: string;
  seconds: number;
}

/** The writes to files under /sys/kernel/tracing in an strace -f -T -y log, joining <unfinished ...> and resumed lines. */
function tracefsWrites(log: string): TracefsWrite[] {
  const pending = new Map<string, { path: string; data: string }>();
  const out: TracefsWrite[] = [];
  for (const line of log.split('\n')) {
    const started = /^(\d+)\s+write\(\d+<([^>]*)>, "((?:[^"\\]|\\.)*)"/.exec(line);
    const resumed = /^(\d+)\s+<\.\.\. write resumed>/.exec(line);
    const took = /<(\d+\.\d+)>$/.exec(line);
    let call: { path: string; data: string } | undefined;
    if (started) {
      call = { path: started[2]!, data: started[3]! };
      if (line.includes('<unfinished ...>')) pending.set(started[1]!, call);
    } else if (resumed) {
      call = pending.get(resumed[1]!);
      pending.delete(resumed[1]!);
    }
    if (call && took && call.path.startsWith('/sys/kernel/tracing/')) out.push({ ...call, seconds: Number(took[1]) });
  }
  return out;
}

const hasStrace = spawnSync('strace', ['-V']).status === 0;

test(
  '--stack under a flood: no write of the run holds the kernel tracing lock for long (strace -T)',
  { skip: skip || (hasStrace ? false : 'needs strace') },
  async () => {
    const dir = mkdtempSync('/tmp/dwtest-strace-');
    const log = `${dir}/strace.log`;
    const args = ['-b', 'tracefs', '-s', '--stack', '-f', 'json', '--filter', OURS];
    const straceArgs = ['-f', '-T', '-y', '-qq', '--seccomp-bpf', '-e', 'trace=write', '-o', log];
    const traced = spawn('strace', [...straceArgs, process.execPath, BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    traced.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    traced.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => traced.once('exit', r));
    try {
      const deadline = Date.now() + 15_000;
      while (!stderr.includes('Kernel monitoring activated.')) {
        assert.ok(Date.now() < deadline && traced.exitCode === null, `never activated: ${stderr}`);
        await sleep(20);
      }
      // 4 s of drops at 250,000/s: the per-second chain budget is used up every second.
      await sendDrops(ns!, 1_000_000, 250_000);
      const pid = findDropwatch(traced.pid!);
      assert.ok(pid, 'the traced dropwatch');
      process.kill(pid, 'SIGINT');
      assert.equal(await exited, 0, stderr);
    } finally {
      traced.kill('SIGKILL');
    }
    const writes = tracefsWrites(readFileSync(log, 'utf8'));
    rmSync(dir, { recursive: true });
    // Monitoring runs from the event's enable to its disable; start and stop may take the lock once each.
    const on = writes.findIndex((w) => w.path.endsWith('/events/skb/kfree_skb/enable') && w.data === '1');
    const off = writes.findLastIndex((w) => w.path.endsWith('/events/skb/kfree_skb/enable') && w.data === '0');
    assert.ok(on >= 0 && off > on, `no enable/disable among ${writes.length} writes`);
    const slow = writes.slice(on + 1, off).filter((w) => w.seconds >= 0.02);
    // Re-arming a trigger (remove, then add) blocked 30-75 ms every second; another process holding the lock may
    // delay one write of ours, never one a second.
    assert.ok(
      slow.length <= 1,
      `slow writes while monitoring:\n${slow.map((w) => `${w.seconds}s ${w.path} ${w.data}`).join('\n')}`,
    );
    // Chains stay a sample within the budget: 1000 a second of drop time, which output intervals do not line up with.
    const sampled = new Map<string, number>();
    for (const line of stdout.trim().split('\n')) {
      const e = JSON.parse(line) as { type: string; time: string; stacks?: { sampled: number } };
      if (e.stacks) sampled.set(e.time, (sampled.get(e.time) ?? 0) + e.stacks.sampled);
    }
    const total = [...sampled.values()].reduce((a, b) => a + b, 0);
    assert.ok(total > 0, 'chains were sampled');
    assert.ok(total <= 1000 * (sampled.size + 1), `${total} chains sampled in ${sampled.size} intervals`);
  },
);

test('--stack on a backend without chains is a one-line error, and bad values are refused', { skip }, async () => {
  const bad = await runCli(['-l', 'none'], 'set stack maybe\nexit\n');
  assert.match(bad.stderr, /^invalid boolean value for stack: "maybe" \(use true or false\)$/m);
  const help = await runCli(['-l', 'none'], 'help\nexit\n');
  assert.match(help.stdout, /^set stack <true \| false>\t - sample the kernel call chain behind drops/m);
});
