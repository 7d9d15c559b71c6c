// The built CLI against the real tracefs of this machine: real drops in a namespace, the piped REPL, signals, cleanup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { CliRun, countDrops, runCli, SUMMARY_LINE, BIN } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf, tracefsSnapshot } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

test(
  'piped session: start, real drops, SIGINT stops, end of input exits 0, tracefs left as found',
  { skip },
  async () => {
    const snapshot = tracefsSnapshot();
    const run = new CliRun(['-b', 'tracefs', '-l', 'kas']);
    run.end('start\n');
    await run.waitFor(/Issue Ctrl-C to stop monitoring\n/);
    assert.deepEqual(instancesOf(run.child.pid), [`dropwatch-${run.child.pid}`], 'private instance while monitoring');
    await ns!.sendUdp('127.0.0.1', 300);
    // Summaries are printed once a second: wait for the last of ours to come out.
    const deadline = Date.now() + 8000;
    while (countDrops(run.stdout, '__udp4_lib_rcv', 'NO_SOCKET') < 300 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    assert.ok(countDrops(done.stdout, '__udp4_lib_rcv', 'NO_SOCKET') >= 300, done.stdout);
    const lines = done.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 4), [
      'Initializing kallsyms db',
      'dropwatch> start',
      'Enabling monitoring...',
      'Kernel monitoring activated.',
    ]);
    assert.equal(lines[4], 'Issue Ctrl-C to stop monitoring');
    // Every drop line keeps dropwatch's printf shape: 16-digit kernel address, lower-case hex offset.
    const dropLines = lines.filter((l) => l.includes(' drops at '));
    assert.ok(dropLines.length > 0);
    for (const l of dropLines) assert.match(l, SUMMARY_LINE);
    assert.match(
      dropLines.find((l) => l.includes('__udp4_lib_rcv'))!,
      /\(0x[0-9a-f]{16}\) \[software\] NO_SOCKET$/,
    );
    assert.deepEqual(lines.slice(-4), [
      'Got a stop message',
      'dropwatch> Terminating dropwatch...',
      'Shutting down ...',
      '',
    ]);
    assert.deepEqual(instancesOf(run.child.pid), [], 'instance removed');
    assert.deepEqual(tracefsSnapshot(), snapshot, 'global tracefs untouched');
  },
);

test('alert limit: deactivates after N printed entries, as dropwatch does', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-l', 'kas']);
  run.end('set alertlimit 1\nset filter reason == NO_SOCKET && symbol == __udp4_lib_rcv\nstart\nstats\n');
  await run.waitFor(/Issue Ctrl-C to stop monitoring\n/);
  await ns!.sendUdp('127.0.0.1', 50);
  const done = await Promise.race([
    run.done,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit: ${run.stdout}`)), 15_000)),
  ]);
  assert.equal(done.code, 0, done.stderr);
  const lines = done.stdout.split('\n');
  const at = lines.indexOf('Alert limit reached, deactivating!');
  assert.ok(at > 0, done.stdout);
  assert.match(lines[at - 1]!, /^\d+ drops at __udp4_lib_rcv\+[0-9a-f]+ \(0x[0-9a-f]{16}\) \[software\] NO_SOCKET$/);
  assert.deepEqual(lines.slice(at + 1, at + 3), [
    'Deactivation requested, turning off monitoring',
    'Got a stop message',
  ]);
  // The next piped command runs only after monitoring ended.
  assert.equal(lines[at + 3], 'dropwatch> stats');
  assert.equal(lines[at + 4], 'Getting statistics');
});

test('-l none prints raw locations in dropwatch form', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-l', 'none']);
  run.end('set filter reason == NO_SOCKET\nstart\n');
  await run.waitFor(/Issue Ctrl-C to stop monitoring\n/);
  await ns!.sendUdp('127.0.0.1', 20);
  await run.waitFor(/drops at location/);
  run.kill('SIGINT');
  const done = await run.done;
  assert.equal(done.code, 0);
  assert.match(done.stdout, /^Initializing null lookup method$/m);
  assert.match(done.stdout, /^\d+ drops at location 0x[0-9a-f]{16} \[software\] NO_SOCKET$/m);
});

test('SIGTERM while monitoring: stops, removes the instance, exits 0', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-l', 'kas']);
  run.write('start\n');
  await run.waitFor(/Issue Ctrl-C to stop monitoring\n/);
  run.kill('SIGTERM');
  const done = await run.done;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /Shutting down \.\.\.\n$/);
  assert.deepEqual(instancesOf(run.child.pid), []);
});

test('SIGHUP at the prompt exits cleanly', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-l', 'kas']);
  await run.waitFor(/dropwatch> $/);
  run.kill('SIGHUP');
  const done = await run.done;
  assert.equal(done.code, 0);
  assert.deepEqual(instancesOf(run.child.pid), []);
});

test('end of input while monitoring does not stop monitoring; a signal does', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-l', 'kas']);
  run.end('start\n');
  await run.waitFor(/Issue Ctrl-C to stop monitoring\n/);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(run.child.exitCode, null, 'still monitoring after end of input');
  assert.doesNotMatch(run.stdout, /Terminating/);
  run.kill('SIGINT');
  const done = await run.done;
  assert.equal(done.code, 0);
  assert.match(done.stdout, /Got a stop message\ndropwatch> Terminating dropwatch\.\.\.\nShutting down \.\.\.\n$/);
});

const badLines: [string, RegExp][] = [
  ['frobnicate', /^unknown command: "frobnicate" \(type 'help' for the list\)$/m],
  ['set alertlimit abc', /^invalid number for alertlimit: "abc" \(expected a whole number\)$/m],
  ['set alertlimit -5', /^invalid number for alertlimit: "-5" \(expected a whole number\)$/m],
  ['set sw maybe', /^invalid boolean value for sw: "maybe" \(use true or false\)$/m],
  ['set trunc 99999999999', /^trunc must be at most 4294967295, got "99999999999"$/m],
  ['x'.repeat(10_000), /^line too long \(10000 characters; at most 4096\)$/m],
  ['\x01\x02\xff\xfe junk', /^line contains control characters; ignored$/m],
  ['set filter reason ==', /^filter: expected a value after '==' at column 10$/m],
  ['set trunc 10', /^truncation applies to NET_DM or bpf packet payloads; the tracefs backend captures no payload$/m],
  ['set hw true', /^hardware drops are reported only by NET_DM/m],
];

test('bad input: one clear line each on stderr, the prompt goes on, nothing crashes', { skip }, async () => {
  const input = badLines.map(([l]) => l).join('\n') + '\nset alertlimit 3\n';
  const done = await runCli(['-b', 'tracefs', '-l', 'kas'], input);
  assert.equal(done.code, 0, done.stderr);
  for (const [, re] of badLines) assert.match(done.stderr, re);
  const errorLines = done.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('dropwatch: using '));
  assert.equal(errorLines.length, badLines.length, done.stderr);
  assert.doesNotMatch(done.stderr, /\n\s+at /, 'no stack trace');
  assert.match(done.stdout, /setting alert capture limit to 3\n/, 'the prompt went on');
  assert.match(done.stdout, /Terminating dropwatch\.\.\.\nShutting down \.\.\.\n$/);
});

test('help, show and stats on tracefs say what this backend can and cannot do', { skip }, async () => {
  const done = await runCli(['-b', 'tracefs', '-l', 'kas'], 'help\nshow\nstats\nset alertmode packet\nshow\nexit\n');
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /^Command Syntax:$/m);
  assert.match(done.stdout, /^This backend sees software drops only: set hw needs NET_DM or bpf\.$/m);
  assert.match(done.stdout, /Getting existing configuration\nAlert mode: Summary\n/);
  assert.match(done.stdout, /Setting alert mode\nAlert mode successfully set\n/);
  assert.match(done.stdout, /Getting existing configuration\nAlert mode: Packet\n/);
  // Our own setting follows dropwatch's lines.
  assert.match(done.stdout, /\nAlert mode: Summary\n[^\n]*\nCall chain sampling: off\n/);
  const stack = await runCli(['-b', 'tracefs', '-l', 'kas', '--stack'], 'show\nexit\n');
  assert.match(stack.stdout, /\nCall chain sampling: on\n/);
  assert.match(done.stdout, /Getting statistics\n(Lost before delivery: 0 \(tracefs ring buffer cpu\d+\)\n)+/);
  assert.match(done.stdout, /dropwatch> exit\nShutting down \.\.\.\n$/);
});

test('packet mode on tracefs prints a dropwatch block per drop with the reason', { skip }, async () => {
  const run = new CliRun(['-b', 'tracefs', '-l', 'kas']);
  run.end('set alertmode packet\nset filter reason == NO_SOCKET\nset alertlimit 2\nstart\n');
  await run.waitFor(/Issue Ctrl-C to stop monitoring\n/);
  await ns!.sendUdp('127.0.0.1', 5);
  const done = await run.done;
  assert.equal(done.code, 0, done.stderr);
  assert.match(
    done.stdout,
    /drop at: __udp4_lib_rcv\+0x[0-9a-f]+ \(0x[0-9a-f]{16}\)\norigin: software\ntimestamp: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \d{9} nsec\nprotocol: 0x800\ndrop reason: NO_SOCKET\nprocess: .+ \(pid \d+\)\n\n/,
  );
});

test('usage errors: one line, the usage, exit 1; -l list exits 0', async () => {
  const unknown = await runCli(['-b', 'tracefs', '-x']);
  assert.equal(unknown.code, 1);
  assert.equal(
    unknown.stderr,
    "dropwatch: unknown option '-x'\nUsage: dropwatch [-l|--lmethod <method | list>] [-b|--backend auto|netdm|bpf|tracefs]\n",
  );
  const method = await runCli(['-b', 'tracefs', '-l', 'bfd']);
  assert.equal(method.code, 1);
  assert.match(method.stderr, /^dropwatch: Unknown lookup method bfd\nUsage: /);
  const list = await runCli(['-b', 'tracefs', '-l', 'list']);
  assert.equal(list.code, 0);
  assert.equal(list.stdout, 'Available lookup methods:\nkas - use /proc/kallsyms\nnone - print raw addresses\n');
});

test('stdin that is a directory: one line on stderr, exit 1, before any prompt loop', { skip }, () => {
  const dir = openSync('/', 'r');
  try {
    const r = spawnSync(process.execPath, [BIN, '-l', 'none', '-b', 'tracefs'], {
      stdio: [dir, 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, 'dropwatch: cannot read standard input: Is a directory\n');
    assert.doesNotMatch(r.stdout, /Terminating dropwatch/);
  } finally {
    closeSync(dir);
  }
});

test('--version: the name and the package version on stdout, exit 0, without touching the kernel', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const done = await runCli(['-b', 'tracefs', '--version']);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stdout, `dropwatch ${version}\n`);
  assert.equal(done.stderr, '');
});

test(
  'not root: one line naming the missing privilege, exit 1, no stack',
  { skip: skip || (existsSync('/usr/bin/setpriv') ? false : 'needs setpriv (util-linux)') },
  async () => {
    // setpriv drops to nobody without a login shell; the repository must be readable by it (it is, here and in CI).
    const out = (() => {
      try {
        execFileSync(
          'setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, '-b', 'tracefs'],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        return { code: 0, stderr: '' };
      } catch (err) {
        const e = err as { status: number; stderr: Buffer };
        return { code: e.status, stderr: e.stderr.toString() };
      }
    })();
    assert.equal(out.code, 1);
    assert.match(out.stderr, /^dropwatch: tracefs access requires root \(CAP_SYS_ADMIN\)/);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
  },
);
