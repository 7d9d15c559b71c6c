// SIGINT, SIGTERM and SIGHUP in every state of the built CLI, against this machine's real tracefs: at the prompt,
// while monitoring (with real drops made just before the signal) and while configuring, with piped stdin and at a
// real terminal (util-linux `script`), plus unattended `-s` runs. In every case the kernel must stop monitoring, the
// process's private instance must go, the drops made before the signal must be printed, and the exit code is 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, CliRun, findDropwatch } from '../helpers/cli.js';
import { canRunKernelTests, instancesOf, tracefsSnapshot } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
const skipTty = skip || (existsSync('/usr/bin/script') ? false : 'needs util-linux script for a pty');
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

type Signal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
type State = 'prompt' | 'monitoring' | 'configuring';
type Stdin = 'piped' | 'tty';
const SIGNALS: readonly Signal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const STATES: readonly State[] = ['prompt', 'monitoring', 'configuring'];
/** Drops made just before the signal: few enough to send in well under the one-second report interval. */
const SENT = 60;

/**
 * Drops counted at __udp4_lib_rcv with NO_SOCKET in dropwatch's summary lines. At a terminal, a line printed while
 * shutting down follows the prompt on the same screen line (the prompt is not cleared then), hence the optional prefix.
 */
function noSocket(text: string): number {
  let total = 0;
  const line = /^(?:dropwatch> )?(\d+) drops at __udp4_lib_rcv\+[0-9a-f]+ \(0x[0-9a-f]+\) \[software\] NO_SOCKET$/gm;
  for (const m of text.matchAll(line)) total += Number(m[1]);
  return total;
}

/** Everything a test needs from a running dropwatch, whether its stdin is a pipe or a terminal. */
interface Target {
  /** dropwatch's own pid (with `script`, a grandchild of the process we spawned). */
  readonly pid: number;
  /** stdout (and, at a terminal, stderr too: both are the pty) with \r\n made \n. */
  output(): string;
  stderr(): string;
  /** Types one command. */
  command(line: string): void;
  /** Ends input: end of the pipe, or Ctrl-D on an empty line. */
  endInput(): void;
  signal(sig: Signal): void;
  readonly done: Promise<number | null>;
  /** Test cleanup only: never leave a process behind when an assertion failed. */
  destroy(): void;
}

async function until(what: string, ok: () => boolean, target: Target | null, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}\n--- output\n${target?.output()}\n--- stderr\n${target?.stderr()}`,
      );
    await sleep(20);
  }
}

async function piped(args: readonly string[]): Promise<Target> {
  const run = new CliRun(args.includes('-b') ? args : ['-b', 'tracefs', ...args]);
  const pid = run.child.pid!;
  const done = run.done.then((f) => f.code);
  return {
    pid,
    output: () => run.stdout,
    stderr: () => run.stderr,
    command: (line) => run.write(`${line}\n`),
    endInput: () => run.end(),
    signal: (sig) => process.kill(pid, sig),
    done,
    destroy: () => run.kill('SIGKILL'),
  };
}

async function tty(args: readonly string[]): Promise<Target> {
  const child: ChildProcess = spawn('script', ['-qfec', [process.execPath, BIN, ...args].join(' '), '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', TERM: 'dumb' },
  });
  let screen = '';
  child.stdout!.on('data', (d: Buffer) => (screen += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (screen += d.toString()));
  // script -e exits with its child's code.
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let pid: number | null = null;
  // readline clears the prompt line (erase line, column 1) before each line it prints, then redraws the prompt: read
  // that as a line break, so each printed line starts a line as it does on screen.
  const output = () =>
    screen
      .replace(/\r\n/g, '\n')
      .replace(/(?:\x1b\[[0-9;]*[A-Za-z])+/g, '\n')
      .replace(/\n{2,}/g, '\n');
  await until('dropwatch under script', () => (pid = findDropwatch(child.pid!)) !== null, null);
  return {
    pid: pid!,
    output,
    stderr: () => '(the pty carries both streams)',
    command: (line) => child.stdin!.write(`${line}\r`),
    endInput: () => child.stdin!.write('\x04'),
    signal: (sig) => process.kill(pid!, sig),
    done,
    destroy: () => {
      try {
        process.kill(pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
      child.kill('SIGKILL');
    },
  };
}

/** These runs test tracefs (its instance must go): named, not left to auto. */
const tracefs = (args: readonly string[]) => (args.includes('-b') ? args : ['-b', 'tracefs', ...args]);
const open = (stdin: Stdin, args: readonly string[]) => (stdin === 'piped' ? piped(tracefs(args)) : tty(tracefs(args)));

async function exitCode(target: Target, timeoutMs = 15_000): Promise<number | null> {
  const code = await Promise.race([target.done, sleep(timeoutMs).then(() => 'timeout' as const)]);
  if (code === 'timeout')
    throw new Error(`no exit within ${timeoutMs} ms\n--- output\n${target.output()}\n--- stderr\n${target.stderr()}`);
  return code;
}

/** The prompt is on screen: `dropwatch> ` as the last thing written. */
const atPrompt =
  (t: Target, count = 1) =>
  () =>
    (t.output().match(/dropwatch> /g)?.length ?? 0) >= count;
const monitoring =
  (t: Target, count = 1) =>
  () =>
    (t.output().match(/Issue Ctrl-C to stop monitoring\n/g)?.length ?? 0) >= count;

async function scenario(stdin: Stdin, state: State, sig: Signal): Promise<void> {
  const snapshot = tracefsSnapshot();
  const t = await open(stdin, ['-l', 'kas']);
  try {
    await until('the prompt', atPrompt(t), t);
    if (state === 'configuring') {
      // Signalled while the commands are read and applied: the kernel filter is written into our instance.
      t.command('set filter reason == NO_SOCKET && symbol =~ /udp/');
      t.command('set alertmode packet');
      // At a terminal, keys not yet read when we exit are echoed by the tty itself after our last line: wait for
      // readline to have taken them, so the signal lands while they are being applied.
      if (stdin === 'tty') await until('the commands read', () => t.output().includes('set alertmode packet'), t);
      t.signal(sig);
    } else if (state === 'monitoring') {
      t.command('start');
      // The next command, read only once monitoring ends (piped) or typed at the prompt after it (tty).
      if (stdin === 'piped') t.command('show');
      await until('monitoring', monitoring(t), t);
      // The run under test really holds an instance (whether it has one at the prompt is the backend's choice).
      assert.deepEqual(instancesOf(t.pid), [`dropwatch-${t.pid}`]);
      await ns!.sendUdp('127.0.0.1', SENT);
      // No wait for the one-second report: stopping must drain the kernel's buffer and print what it held.
      t.signal(sig);
    } else {
      t.signal(sig);
    }

    if (state === 'monitoring' && sig === 'SIGINT') {
      // SIGINT stops monitoring only: the prompt (or the next piped command) comes back, the process stays.
      await until('the stop', () => /Got a stop message\n/.test(t.output()), t);
      if (stdin === 'tty') {
        await until('the prompt after the stop', () => /Got a stop message\n[^]*dropwatch> /.test(t.output()), t);
        t.command('show');
      }
      await until('the next command', () => /Getting existing configuration\n/.test(t.output()), t);
      assert.equal(await Promise.race([t.done, sleep(200).then(() => 'running')]), 'running', 'still running');
      t.endInput();
    }
    const code = await exitCode(t);
    const out = t.output();
    assert.equal(code, 0, `exit code\n${out}\n${t.stderr()}`);
    if (state === 'monitoring') {
      assert.match(out, /Got a stop message\n/);
      const counted = noSocket(out.slice(0, out.indexOf('Got a stop message')));
      assert.ok(counted >= SENT, `counted ${counted} < sent ${SENT} before the stop\n${out}`);
    }
    assert.match(out, /Shutting down \.\.\.\n$/, 'orderly shutdown, last line out');
    assert.doesNotMatch(out + t.stderr(), /internal error|\n\s+at /, 'no stack trace');
    assert.deepEqual(instancesOf(t.pid), [], 'instance removed');
    assert.deepEqual(tracefsSnapshot(), snapshot, 'global tracefs state as found');
  } finally {
    t.destroy();
  }
}

for (const stdin of ['piped', 'tty'] as const) {
  for (const state of STATES) {
    test(
      `${stdin}: ${SIGNALS.join('/')} ${state === 'prompt' ? 'at the prompt' : `while ${state}`}`,
      {
        skip: stdin === 'tty' ? skipTty : skip,
        // Cases share only the namespace and the tracepoint: each counts ≥ its own drops, so they may overlap.
        concurrency: 3,
      },
      async (t) => {
        await Promise.all(SIGNALS.map((sig) => t.test(sig, () => scenario(stdin, state, sig))));
      },
    );
  }
}

test(
  '-s (unattended): SIGINT/SIGTERM/SIGHUP stop, print the drops made just before, exit 0',
  { skip, concurrency: 3 },
  async (t) => {
    await Promise.all(
      SIGNALS.map((sig) =>
        t.test(sig, async () => {
          const snapshot = tracefsSnapshot();
          const run = new CliRun(['-b', 'tracefs', '-s', '-l', 'kas', '--filter', 'reason == NO_SOCKET']);
          try {
            await run.monitoring();
            await ns!.sendUdp('127.0.0.1', SENT);
            run.kill(sig);
            const done = await run.done;
            assert.equal(done.code, 0, done.stderr);
            assert.ok(noSocket(done.stdout) >= SENT, `counted ${noSocket(done.stdout)} < ${SENT}\n${done.stdout}`);
            assert.match(done.stderr, /Got a stop message\n/);
            assert.doesNotMatch(done.stderr, /internal error|\n\s+at /);
            assert.deepEqual(instancesOf(run.child.pid), []);
            assert.deepEqual(tracefsSnapshot(), snapshot);
          } finally {
            run.kill('SIGKILL');
          }
        }),
      ),
    );
  },
);

test(
  'start-up: a signal the moment the kernel holds our instance (before the REPL or -s listens) still exits 0 and cleans up',
  { skip, concurrency: 3 },
  async (t) => {
    const cases = SIGNALS.flatMap((sig) => [
      { sig, args: ['-l', 'kas'] },
      { sig, args: ['-s', '-l', 'kas'] },
    ]);
    await Promise.all(
      cases.map(({ sig, args }) =>
        t.test(`${sig} ${args.join(' ')}`, async () => {
          const run = new CliRun(args.includes('-b') ? args : ['-b', 'tracefs', ...args]);
          const pid = run.child.pid!;
          try {
            // Poll without timers so the signal lands as close as possible after the instance appears (or, where
            // the backend makes it only at `start`, at the prompt).
            const deadline = Date.now() + 10_000;
            while (instancesOf(pid).length === 0 && !run.stdout.includes('dropwatch> ') && Date.now() < deadline)
              await new Promise((r) => setImmediate(r));
            run.kill(sig);
            const done = await run.done;
            assert.deepEqual(
              [done.code, done.signal],
              [0, null],
              `killed by its signal?\n${done.stdout}${done.stderr}`,
            );
            assert.deepEqual(instancesOf(pid), [], 'instance left behind');
          } finally {
            run.kill('SIGKILL');
          }
        }),
      ),
    );
  },
);
