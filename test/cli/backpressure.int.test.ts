// A reader that cannot keep up with a packet-mode flood: memory stays bounded, every drop is printed or reported lost,
// and -d still ends the run on time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../helpers/cli.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { sendDrops } from '../../bench/lib/sender.js';

const skip = canRunKernelTests();
let ns: Netns | null = null;
before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

/** The memory bound the README states for a run whose output cannot keep up. */
const RSS_BOUND_KB = 256 * 1024;
const DURATION_S = 6;
const SENT = 200_000;

interface Outcome {
  /** Complete drop reports the reader got. */
  printed: number;
  /** Drops reported lost on stderr, wherever they were lost. */
  lost: number;
  peakKb: number;
  /** From monitoring on to the process gone, as seen here. */
  runMs: number;
  code: number | null;
  stderr: string;
}

/** Floods while dropwatch writes to `stdout` (a file, or a pipe whose reader sleeps through the run). */
async function flood(args: string[], stdout: number | Writable): Promise<Outcome> {
  const child = spawn(process.execPath, [BIN, '-s', '-d', String(DURATION_S), ...args], {
    stdio: ['ignore', stdout, 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  // Our end of the reader's pipe: closed, so the reader sees the end when dropwatch exits.
  if (typeof stdout !== 'number') stdout.destroy();
  try {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 15_000;
    while (!stderr.includes('Kernel monitoring activated.')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `monitoring did not start:\n${stderr}`);
      await sleep(10);
    }
    const started = Date.now();
    let peakKb = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) peakKb = Math.max(peakKb, Number(m[1]));
        } catch {
          return;
        }
        await sleep(50);
      }
    })();
    const sent = await sendDrops(ns!, SENT);
    assert.equal(sent.sent, SENT);
    assert.ok(Date.now() - started < DURATION_S * 1000, 'the sender did not finish before -d: machine too slow');
    const code = await exited;
    const runMs = Date.now() - started;
    sampling = false;
    await sampler;
    const lost = [...stderr.matchAll(/^(?:Lost|dropwatch:) (\d+) drop events/gm)].reduce((n, m) => n + Number(m[1]), 0);
    return { printed: 0, lost, peakKb, runMs, code, stderr };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Complete JSON packet reports in what the reader got. */
const packetsIn = (text: string): number =>
  text.split('\n').filter((l) => l.startsWith('{"type":"packet"') && l.endsWith('}')).length;

function check(o: Outcome): void {
  assert.equal(o.code, 0, o.stderr);
  // Other tasks' drops at the same place may add a few.
  const made = o.printed + o.lost;
  assert.ok(made >= SENT && made < SENT * 1.01, `printed ${o.printed} + lost ${o.lost} for ${SENT} made\n${o.stderr}`);
  assert.ok(o.peakKb < RSS_BOUND_KB, `peak RSS ${o.peakKb} kB`);
  assert.ok(o.runMs < (DURATION_S + 1) * 1000 + 300, `ran ${o.runMs} ms for -d ${DURATION_S}`);
}

const ARGS = ['-m', 'packet', '-f', 'json', '--filter', 'reason == NO_SOCKET'];

test('packet mode, a reader that stalls: bounded memory, printed + lost = made, -d on time', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-backpressure-'));
  try {
    const path = join(dir, 'out.json');
    // The reader takes nothing until well after -d, then everything that reached its pipe.
    const reader = spawn('sh', ['-c', `sleep ${DURATION_S + 3}; exec cat > ${path}`], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    const readerDone = new Promise((resolve) => reader.on('exit', resolve));
    const o = await flood(ARGS, reader.stdin);
    await readerDone;
    o.printed = packetsIn(readFileSync(path, 'utf8'));
    check(o);
    assert.match(
      o.stderr,
      /^Lost \d+ drop events that dropwatch could not print: the reader of its output fell behind$/m,
    );
    assert.match(
      o.stderr,
      /^In total, \d+ drop events were not printed: the reader of dropwatch's output fell behind$/m,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packet mode into a file: bounded memory, printed + lost = made, -d on time', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-backpressure-'));
  try {
    const path = join(dir, 'out.json');
    const fd = openSync(path, 'w');
    let o: Outcome;
    try {
      o = await flood(ARGS, fd);
    } finally {
      closeSync(fd);
    }
    o.printed = packetsIn(readFileSync(path, 'utf8'));
    check(o);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
