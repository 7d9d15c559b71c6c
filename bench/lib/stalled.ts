// One `dropwatch -s -d N` run under a flood whose output nobody reads in time: a pipe whose reader sleeps through the
// run, or a file. Measures what the run printed and reported lost, its peak memory and how late it ended.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchNetns } from './netns.js';
import { peakRssKiB } from './proc.js';
import { dropwatchBin } from './root.js';
import { sendDrops } from './sender.js';

export type Consumer = 'stalled pipe' | 'file';

/** The memory bound docs/reliability.md states for a run whose output cannot keep up, KiB. */
export const RSS_BOUND_KIB = 256 * 1024;

export interface StalledRun {
  /** Drop reports that reached the reader whole: JSON packet objects, text packet blocks, or summary-line counts. */
  printed: number;
  /** Drops reported lost on stderr because the output fell behind (printed, then not taken, included). */
  lostOutput: number;
  /** Drops reported lost anywhere else (the kernel's ring buffer, the reader's backlog). */
  lostElsewhere: number;
  sent: number;
  /** Highest VmHWM seen, KiB. */
  peakKiB: number;
  /** From monitoring on to the process gone, as seen from here, ms. */
  runMs: number;
  code: number | null;
  stderr: string;
  /** What follows the output's last newline: empty when the reader got whole lines only. */
  cut: string;
}

/** What the reader got, counted the way the mode prints drops. */
function printedIn(text: string, args: readonly string[]): number {
  const lines = text.split('\n');
  if (args.includes('packet')) {
    if (args.includes('json')) return lines.filter((l) => l.startsWith('{"type":"packet"') && l.endsWith('}')).length;
    // A text block is whole once the blank line that ends it is there.
    return lines.filter((l, i) => l.startsWith('drop at:') && lines.slice(i + 1).includes('')).length;
  }
  let n = 0;
  for (const l of lines) {
    const m = /^(\d+) drops at \S+/.exec(l);
    if (m) n += Number(m[1]);
  }
  return n;
}

/**
 * The drops a run reports lost on stderr, each once: because its output fell behind (counted while congested, and
 * written but never taken at the end), and before they reached it, by place ("netlink socket", a ring buffer...).
 */
export function lostIn(stderr: string): { output: number; elsewhere: Map<string, number> } {
  const sum = (re: RegExp) => [...stderr.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  const elsewhere = new Map<string, number>();
  for (const m of stderr.matchAll(/^Lost (\d+) drop events before they reached dropwatch \((.*)\)$/gm))
    elsewhere.set(m[2]!, (elsewhere.get(m[2]!) ?? 0) + Number(m[1]));
  return {
    output:
      sum(/^Lost (\d+) drop events that dropwatch could not print/gm) +
      sum(/^Lost (\d+) drop events that dropwatch wrote but the reader of standard output never took/gm),
    elsewhere,
  };
}

/**
 * Starts `dropwatch -s -d durationS ...args`, sends `count` drops into `ns` as fast as it can once monitoring is on,
 * and waits for the run to end by itself.
 */
export async function runStalled(opts: {
  ns: Pick<BenchNetns, 'name'>;
  args: readonly string[];
  consumer: Consumer;
  count: number;
  durationS: number;
}): Promise<StalledRun> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-stalled-'));
  const path = join(dir, 'out');
  const reader =
    opts.consumer === 'stalled pipe'
      ? spawn('sh', ['-c', `sleep ${opts.durationS + 3}; exec cat > "$0"`, path], {
          stdio: ['pipe', 'ignore', 'inherit'],
        })
      : null;
  const readerDone = reader ? new Promise((resolve) => reader.on('exit', resolve)) : Promise.resolve();
  const fd = reader ? null : openSync(path, 'w');
  const child = spawn(process.execPath, [dropwatchBin, '-s', '-d', String(opts.durationS), ...opts.args], {
    stdio: ['ignore', reader ? reader.stdin : fd!, 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  // Our ends: closed, so the reader sees the end when dropwatch exits.
  reader?.stdin!.destroy();
  if (fd !== null) closeSync(fd);
  try {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes('Kernel monitoring activated.')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`monitoring did not start:\n${stderr}`);
      await sleep(10);
    }
    const started = Date.now();
    let peakKiB = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakKiB = Math.max(peakKiB, peakRssKiB(child.pid!) ?? 0);
        await sleep(50);
      }
    })();
    const sent = await sendDrops(opts.ns, opts.count);
    if (Date.now() - started >= opts.durationS * 1000)
      throw new Error(`the sender did not finish within -d ${opts.durationS}: machine too slow for this count`);
    const code = await exited;
    const runMs = Date.now() - started;
    sampling = false;
    await sampler;
    await readerDone;
    const lost = lostIn(stderr);
    const output = readFileSync(path, 'utf8');
    return {
      printed: printedIn(output, opts.args),
      cut: output.slice(output.lastIndexOf('\n') + 1),
      lostOutput: lost.output,
      lostElsewhere: [...lost.elsewhere.values()].reduce((a, b) => a + b, 0),
      sent: sent.sent,
      peakKiB,
      runMs,
      code,
      stderr,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    reader?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
