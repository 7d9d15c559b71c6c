// The built CLI's unattended mode (-s) on the real tracefs: real UDP drops in a namespace, JSON lines checked against
// the schema, text and JSON agreeing, signals, the alert limit, a closed pipe, and the kernel left as found.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, CliRun, runCli } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { validateEvent } from '../helpers/schema.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;
// Our drops: UDP to a closed port in our namespace, freed by __udp4_lib_rcv (or __udp6_lib_rcv) with NO_SOCKET.
const OURS = 'reason == NO_SOCKET';

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

interface Parsed {
  type: string;
  count?: number;
  symbol?: string | null;
  reason?: string | null;
}

/** Every stdout line must be one schema-valid object; returns them. */
function jsonLines(stdout: string): Parsed[] {
  const lines = stdout.split('\n');
  assert.equal(lines.pop(), '', 'output ends with a newline');
  return lines.map((line) => {
    const value = JSON.parse(line) as Parsed;
    assert.deepEqual(validateEvent(value), [], line);
    return value;
  });
}

const noSocketCount = (events: Parsed[], symbol = '__udp4_lib_rcv') =>
  events
    .filter((e) => (e.type === 'summary' || e.type === 'packet') && e.symbol === symbol && e.reason === 'NO_SOCKET')
    .reduce((sum, e) => sum + (e.count ?? 0), 0);

const TEXT_LINE =
  /^(?:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) )?(\d+) drops at ([\w.]+)\+[0-9a-f]+ \(0x[0-9a-f]+\) \[software\](?: (\w+))?$/;

function textCount(stdout: string, symbol = '__udp4_lib_rcv'): number {
  let total = 0;
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const m = TEXT_LINE.exec(line);
    assert.ok(m, `not a drop line: ${line}`);
    if (m[3] === symbol && m[4] === 'NO_SOCKET') total += Number(m[2]);
  }
  return total;
}

test(
  '-s -d 3 -f json: only schema-valid JSON on stdout, NO_SOCKET counted >= sent, exit 0, instance gone',
  { skip },
  async () => {
    const sent = 300;
    const run = new CliRun(['-b', 'tracefs', '-s', '-d', '3', '-f', 'json', '--filter', OURS]);
    await run.monitoring();
    await ns!.sendUdp('127.0.0.1', sent);
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    const events = jsonLines(done.stdout);
    const counted = noSocketCount(events);
    console.log(`json: sent ${sent}, counted ${counted}`);
    assert.ok(counted >= sent, `counted ${counted} < sent ${sent}`);
    assert.ok(
      events.every((e) => e.type !== 'summary' || e.reason === 'NO_SOCKET'),
      'the filter held',
    );
    assert.match(done.stderr, /filter set: reason == NO_SOCKET \(kernel: reason == \d+\)/);
    assert.match(done.stderr, /Got a stop message/);
    assert.deepEqual(instancesOf(run.child.pid), []);
  },
);

test(
  'text and JSON runs over the same drops agree; --timestamp starts each line with an ISO time',
  { skip },
  async () => {
    const sent = 200;
    // IPv6 drops in our namespace: protocol narrows the filter further, away from other tests' IPv4 drops.
    const filter = `${OURS} && protocol == ipv6`;
    const text = new CliRun(['-b', 'tracefs', '-s', '-d', '3', '--timestamp', '--filter', filter]);
    const json = new CliRun(['-b', 'tracefs', '-s', '-d', '3', '-f', 'json', '--filter', filter]);
    await Promise.all([text.monitoring(), json.monitoring()]);
    await ns!.sendUdp('::1', sent);
    const [t, j] = await Promise.all([text.done, json.done]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(j.code, 0, j.stderr);
    const textCounted = textCount(t.stdout, '__udp6_lib_rcv');
    const jsonCounted = noSocketCount(jsonLines(j.stdout), '__udp6_lib_rcv');
    console.log(`text vs json: sent ${sent}, text ${textCounted}, json ${jsonCounted}`);
    assert.ok(textCounted >= sent, `text counted ${textCounted} < ${sent}`);
    assert.equal(textCounted, jsonCounted);
    for (const line of t.stdout.trim().split('\n')) {
      const stamp = TEXT_LINE.exec(line)?.[1];
      assert.ok(stamp, line);
      assert.ok(Math.abs(Date.parse(stamp) - Date.now()) < 30_000, line);
    }
    // Unattended text runs keep stdout for drop lines: the chatter went to stderr.
    assert.doesNotMatch(t.stdout, /Kernel monitoring activated|dropwatch>/);
  },
);

test('SIGTERM (and SIGINT) stop at once and still report drops made just before, exit 0', { skip }, async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const sent = 100;
    const run = new CliRun(['-b', 'tracefs', '-s', '-f', 'json', '--filter', OURS]);
    await run.monitoring();
    await ns!.sendUdp('127.0.0.1', sent);
    // No wait for the one-second report: stopping must drain the kernel's buffer and flush.
    run.kill(signal);
    const done = await run.done;
    assert.equal(done.code, 0, `${signal}: ${done.stderr}`);
    const counted = noSocketCount(jsonLines(done.stdout));
    console.log(`${signal}: sent ${sent}, counted ${counted}`);
    assert.ok(counted >= sent, `${signal}: counted ${counted} < ${sent}`);
    assert.deepEqual(instancesOf(run.child.pid), []);
  }
});

test('-n 1: the alert limit ends the run by itself after one reported entry', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-s', '-n', '1', '-f', 'json', '--filter', OURS]);
  await run.monitoring();
  await ns!.sendUdp('127.0.0.1', 20);
  const done = await Promise.race([run.done, sleep(20_000).then(() => null)]);
  if (!done) run.kill('SIGKILL');
  assert.ok(done, 'still running 20 s after the limit was reached');
  assert.equal(done.code, 0, done.stderr);
  assert.equal(jsonLines(done.stdout).length, 1);
  assert.match(done.stderr, /Alert limit reached, deactivating!/);
});

test('-m packet -f json: one valid packet object per drop, with the drop time', { skip }, async () => {
  const sent = 50;
  const run = new CliRun(['-b', 'tracefs', '-s', '-d', '2', '-m', 'packet', '-f', 'json', '--filter', OURS]);
  await run.monitoring();
  const before = Date.now();
  await ns!.sendUdp('127.0.0.1', sent);
  const done = await run.done;
  assert.equal(done.code, 0, done.stderr);
  const packets = jsonLines(done.stdout).filter((e) => e.type === 'packet') as (Parsed & {
    time: string;
    protocol: number;
  })[];
  const ours = packets.filter((p) => p.symbol === '__udp4_lib_rcv' && p.protocol === 0x800);
  assert.ok(ours.length >= sent, `${ours.length} packets < ${sent}`);
  // The kernel's timestamp, to the nanosecond, within the run.
  assert.ok(
    ours.every((p) => /\.\d{9}Z$/.test(p.time) && Date.parse(p.time) >= before - 1000),
    ours[0]?.time,
  );
});

test(
  '-d holds with a slow pattern in packet mode: the filter tests each location once, not each drop',
  { skip },
  async () => {
    const sent = 200;
    // Tens of ms against __udp4_lib_rcv (nested quantifiers backtrack); never matches, so !~ lets every drop through.
    const slow = String.raw`symbol !~ /^((\w+)+)+X$/`;
    const run = new CliRun([
      '-b',
      'tracefs',
      '-s',
      '-d',
      '2',
      '-m',
      'packet',
      '-f',
      'json',
      '--filter',
      `${OURS} && ${slow}`,
    ]);
    await run.monitoring();
    const started = Date.now();
    await ns!.sendUdp('127.0.0.1', sent);
    const done = await run.done;
    const took = Date.now() - started;
    console.log(`slow pattern: ${sent} packets, the 2 s run ended ${took} ms after the drops began`);
    assert.equal(done.code, 0, done.stderr);
    const ours = jsonLines(done.stdout).filter((e) => e.type === 'packet' && e.symbol === '__udp4_lib_rcv');
    assert.ok(ours.length >= sent, `${ours.length} packets < ${sent}`);
    assert.ok(took < 4000, `-d 2 took ${took} ms`);
  },
);

test('-s | head -1: exits 0 when the reader goes away, quietly, leaving no tracefs instance', { skip }, async () => {
  let sending = true;
  const sender = (async () => {
    while (sending) {
      await ns!.sendUdp('127.0.0.1', 5);
      await sleep(150);
    }
  })();
  try {
    for (const format of ['text', 'json']) {
      // BASHPID then exec: the pid printed is dropwatch's own, so we can look for its instance afterwards.
      const script =
        `(echo "pid=$BASHPID" >&2; exec "${process.execPath}" "${BIN}" -s -d 30 -f ${format} --filter '${OURS}') ` +
        `| head -1; echo "status=\${PIPESTATUS[0]}" >&2`;
      const started = Date.now();
      const child = spawn('bash', ['-c', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      await new Promise((resolve) => child.on('close', resolve));
      const elapsed = Date.now() - started;
      assert.match(stderr, /status=0\n/, stderr);
      assert.ok(elapsed < 20_000, `took ${elapsed} ms: the closed pipe did not end the run`);
      assert.equal(stdout.split('\n').length, 2, stdout);
      if (format === 'json') assert.deepEqual(validateEvent(JSON.parse(stdout)), []);
      assert.doesNotMatch(stderr, /EPIPE|internal error|\n\s+at /, stderr);
      const pid = Number(/pid=(\d+)/.exec(stderr)?.[1]);
      assert.ok(pid > 0);
      assert.deepEqual(instancesOf(pid), []);
    }
  } finally {
    sending = false;
    await sender;
  }
});

test('-s | head -1 with nothing more to print: the reader leaving ends the run within a second', { skip }, async () => {
  // IPv6 only: other runs on this machine make IPv4 drops, which could be printed and so show the reader gone.
  const filter = `${OURS} && protocol == ipv6`;
  for (const format of ['text', 'json']) {
    const script =
      `(echo "pid=$BASHPID" >&2; exec "${process.execPath}" "${BIN}" -s -d 60 -f ${format} --filter '${filter}') ` +
      `| head -1; echo "status=\${PIPESTATUS[0]}" >&2`;
    const child = spawn('bash', ['-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    let lineAt = 0;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      lineAt ||= Date.now();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number>((resolve) => child.on('close', () => resolve(Date.now())));
    const start = Date.now();
    while (!stderr.includes('Kernel monitoring activated.')) {
      assert.ok(Date.now() - start < 10_000, `monitoring never started: ${stderr}`);
      await sleep(25);
    }
    // One burst, then nothing: the first report is the only write dropwatch makes.
    await ns!.sendUdp('::1', 5);
    const end = await Promise.race([closed, sleep(20_000).then(() => null)]);
    if (end === null) {
      child.kill('SIGKILL');
      process.kill(Number(/pid=(\d+)/.exec(stderr)?.[1]), 'SIGTERM');
    }
    assert.ok(end !== null && lineAt > 0, `${format}: still running 20 s after the reader left\n${stderr}`);
    const after = end - lineAt;
    console.log(`${format}: the pipeline ended ${after} ms after head printed its line`);
    assert.ok(after < 2000, `${format}: took ${after} ms`);
    assert.match(stderr, /status=0\n/, stderr);
    assert.equal(stdout.split('\n').length, 2, stdout);
    assert.doesNotMatch(stderr, /EPIPE|internal error|\n\s+at /, stderr);
    assert.deepEqual(instancesOf(Number(/pid=(\d+)/.exec(stderr)?.[1])), []);
  }
});

/** Runs the CLI with stdout on /dev/full (every write fails with ENOSPC) and stderr collected. */
function intoFullDevice(args: string[], stdin: string | null = null) {
  const full = openSync('/dev/full', 'w');
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: [stdin === null ? 'ignore' : 'pipe', full, 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  closeSync(full);
  if (stdin !== null) child.stdin!.end(stdin);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  return { child, stderr: () => stderr, done };
}

test('--version, --help and -l list into a full device (/dev/full): one line naming the failed write, exit 1', async () => {
  for (const args of [['--version'], ['--help'], ['-l', 'list']]) {
    const done = await intoFullDevice(args).done;
    assert.equal(done.code, 1, `${args.join(' ')}: ${done.stderr}`);
    assert.equal(done.stderr, 'dropwatch: cannot write standard output: No space left on device\n', args.join(' '));
  }
});

test('stdout that cannot be written (/dev/full): one line, exit 1, the kernel left as found', { skip }, async () => {
  for (const format of ['text', 'json']) {
    const run = intoFullDevice(['-b', 'tracefs', '-s', '-d', '30', '-f', format, '--filter', OURS]);
    const start = Date.now();
    while (!run.stderr().includes('Kernel monitoring activated.')) {
      assert.ok(Date.now() - start < 10_000, `monitoring never started: ${run.stderr()}`);
      await sleep(25);
    }
    await ns!.sendUdp('127.0.0.1', 10);
    const done = await Promise.race([run.done, sleep(15_000).then(() => null)]);
    if (!done) run.child.kill('SIGKILL');
    assert.ok(done, `${format}: still running 15 s after a write failed`);
    assert.equal(done.code, 1, done.stderr);
    const ours = done.stderr.split('\n').filter((l) => l.startsWith('dropwatch'));
    assert.deepEqual(ours, ['dropwatch: cannot write standard output: No space left on device'], done.stderr);
    assert.match(done.stderr, /Got a stop message/);
    assert.doesNotMatch(done.stderr, /internal error|\n\s+at /);
    assert.deepEqual(instancesOf(run.child.pid), []);
  }
  // At the prompt the first line already fails.
  const repl = intoFullDevice(['-b', 'tracefs', '-l', 'none'], 'start\n');
  const done = await repl.done;
  assert.equal(done.code, 1, done.stderr);
  assert.equal(done.stderr.split('\n').filter((l) => l.startsWith('dropwatch')).length, 1, done.stderr);
  assert.match(done.stderr, /^dropwatch: cannot write standard output: No space left on device$/m);
  assert.deepEqual(instancesOf(repl.child.pid), []);
});

// Without CAP_SYSLOG, /proc/kallsyms shows zeros unless kptr_restrict is 0 and perf_event_paranoid at most 1.
const hidesWithoutSyslog = (() => {
  try {
    const kptr = Number(readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8'));
    const perf = Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8'));
    return kptr === 1 || (kptr === 0 && perf > 1);
  } catch {
    return false;
  }
})();

test(
  'without CAP_SYSLOG: the notice names the missing capability, and a symbol filter is said never to match',
  {
    skip:
      skip ||
      (existsSync('/usr/bin/setpriv') ? false : 'needs setpriv (util-linux)') ||
      (hidesWithoutSyslog ? false : 'kernel.kptr_restrict hides addresses from everyone, or from no one, here'),
  },
  () => {
    const r = spawnSync(
      'setpriv',
      [
        '--bounding-set=-syslog',
        process.execPath,
        BIN,
        '-s',
        '-d',
        '1',
        '-b',
        'tracefs',
        '--filter',
        'symbol =~ /udp/',
      ],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } },
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n');
    const notice = lines.filter((l) => l.startsWith('kernel symbol addresses are hidden'));
    assert.equal(notice.length, 1, r.stderr);
    assert.match(notice[0]!, /this process lacks CAP_SYSLOG/);
    const never = lines.filter((l) => /can never match/.test(l));
    assert.deepEqual(never, [
      'dropwatch: this filter can never match: symbol is unknown while kernel addresses are hidden',
    ]);
  },
);

test(
  'a --filter on the flow where the backend cannot know it: one line, exit 1, nothing started',
  { skip },
  async () => {
    const never = (fields: string, verb: string) =>
      `dropwatch: --filter: ${fields} ${verb} not known on the tracefs backend, which decodes no packets ` +
      "(NET_DM's or bpf's packet mode decodes packets: -b netdm -m packet or -b bpf -m packet)\n";
    const cases: [string[], string, string][] = [
      [['-s', '-b', 'tracefs', '--filter', 'dport == 9'], '', never('dport', 'is')],
      [
        ['-s', '-b', 'tracefs', '-m', 'packet', '--filter', 'dst in 127.0.0.0/8 && l4 == udp'],
        '',
        never('l4 and dst', 'are'),
      ],
      // At the prompt too: the run would otherwise wait for drops that can never be selected.
      [['-b', 'tracefs', '--filter', 'reason == NO_SOCKET || l3 == ipv6'], 'start\n', never('l3', 'is')],
    ];
    for (const [args, stdin, stderr] of cases) {
      const run = new CliRun(args);
      run.end(stdin);
      const done = await run.done;
      assert.equal(done.code, 1, args.join(' '));
      assert.equal(done.stderr, stderr, args.join(' '));
      assert.doesNotMatch(done.stdout, /Kernel monitoring activated/);
      assert.deepEqual(instancesOf(run.child.pid), []);
    }
    // At the prompt the refusal is one line and the session goes on, with no filter set.
    const prompt = await runCli(['-b', 'tracefs'], 'set filter sport == 53\nshow\n');
    assert.equal(prompt.code, 0, prompt.stderr);
    assert.equal(
      prompt.stderr,
      'filter not set: sport is not known on the tracefs backend, which decodes no packets\n',
    );
    assert.doesNotMatch(prompt.stdout, /filter set/);
  },
);

test('a bad --filter is one line pointing at the column, exit 1, before touching the kernel', async () => {
  const done = await runCli(['-b', 'tracefs', '-s', '--filter', 'reason == NO_SOCKET &&& protocol == ip']);
  assert.equal(done.code, 1);
  assert.match(done.stderr, /^dropwatch: --filter: .* at column \d+\n$/);
  const ignore = await runCli(['-b', 'tracefs', '-s', '--ignore-reason', 'NO_SOCKET,']);
  assert.equal(ignore.code, 1);
  assert.equal(ignore.stderr, 'dropwatch: --ignore-reason: empty reason name at column 11\n');
  const usage = await runCli(['-b', 'tracefs', '-d', '3']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /^dropwatch: --duration applies to --start runs only\nUsage: /);
});
