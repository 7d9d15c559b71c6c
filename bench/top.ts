// The live view (`npm run bench -- top`): a redraw with 4,096 sites against the refresh interval and against the text
// output of the same interval; a tracefs storm under `--top` against the text CLI; start-up with and without it.
import { execFileSync, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendCapabilities, SummaryEntry } from '../src/backend/types.js';
import { buildTextRenderer } from '../src/output/text.js';
import { TopController } from '../src/top/controller.js';
import { locationLabel } from '../src/top/layout.js';
import { buildBase, removeBase, shq } from './lib/base-build.js';
import { countDropwatchOutput, reapInstance } from './lib/dropwatch-output.js';
import { MonitorProcess } from './lib/monitor.js';
import { BenchNetns } from './lib/netns.js';
import { cpuMicros, loadAverage, which } from './lib/proc.js';
import { dropwatchBin, projectRoot } from './lib/root.js';
import { sendDrops } from './lib/sender.js';
import { fmtInt, fmtSpread, sleep, spread, type Spread } from './lib/stats.js';

export const SITES = 4096;
const REFRESH_MS = 1000;
const SIZE = { columns: 200, rows: 50 };

export interface RedrawResult {
  sites: number;
  rounds: number;
  /** Milliseconds per interval: the view's model update, its layout alone, and the whole redraw through Ink. */
  modelMs: Spread;
  layoutMs: Spread;
  redrawMs: Spread;
  /** The text output of the same interval: 4,096 summary lines formatted and written. */
  textMs: Spread;
  /** Bytes Ink wrote per redraw. */
  bytes: number;
}

export interface StormRow {
  config: 'none' | 'text' | 'top';
  rate: Spread;
  /** Sender rate / the same round's unmonitored rate. */
  ratio: Spread;
  cpuPerDropUs: Spread;
}

export interface TopStormResult {
  count: number;
  rounds: number;
  rows: StormRow[];
  /** Per --top round: the view's total after the storm minus what was sent (others' drops can add a few). */
  topExcess: number[];
  /** Per text round: counted + lost - sent. */
  textExcess: number[];
  notes: string[];
}

export interface StartupCompare {
  base: string;
  runs: number;
  tool: string;
  /** Milliseconds: `echo exit | dropwatch -l kas` built from `base`, and from this tree; `node -e 0`. */
  before: Spread;
  after: Spread;
  node: Spread;
  /** Importing the view module (Ink, React, the view), what only --top and top pay. */
  importView: Spread;
}

export interface TopBenchResult {
  date: string;
  git: string;
  load: [number, number];
  redraw: RedrawResult;
  storm: TopStormResult | { skipped: string };
  startup: StartupCompare | { skipped: string };
}

const CAPS: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: false, queue: false, hw: false },
  fields: { summary: ['reason'], packet: ['reason'] },
  reasons: null,
  kernelFilter: null,
};

/** A terminal for Ink to draw on that only counts what it is given. */
class NullTerminal extends EventEmitter {
  isTTY = true;
  columns = SIZE.columns;
  rows = SIZE.rows;
  writes = 0;
  bytes = 0;
  write(s: string, cb?: () => void): boolean {
    this.writes++;
    this.bytes += s.length;
    cb?.();
    return true;
  }
}

class NullKeys extends EventEmitter {
  isTTY = true;
  setRawMode() {}
  setEncoding() {}
  ref() {}
  unref() {}
  read() {
    return null;
  }
}

/** One storm second at 4,096 sites: every site dropped, with counts that differ from second to second. */
function interval(round: number): SummaryEntry[] {
  const lines: SummaryEntry[] = [];
  for (let i = 0; i < SITES; i++)
    lines.push({
      origin: 'software',
      pc: 0xffffffff81000000n + BigInt(i * 0x40),
      reason: i % 3 === 0 ? 'NO_SOCKET' : 'NETFILTER_DROP',
      count: 1 + ((i * 7919 + round * 104729) % 5000),
    });
  return lines;
}

const lookup = (pc: bigint) => ({ symbol: `kernel_function_${(pc & 0xffffffn).toString(16)}`, offset: 0x4bcn });

/** The redraw with 4,096 sites, each round beside the text output's work for the same interval. */
export async function runRedraw(rounds: number): Promise<RedrawResult> {
  // As the CLI does before it loads the view: React's production build.
  process.env.NODE_ENV ??= 'production';
  const [{ createElement: h }, { render }, { TopApp }] = await Promise.all([
    import('react'),
    import('ink'),
    import('../src/top/view.js'),
  ]);
  const modelMs: number[] = [];
  const layoutMs: number[] = [];
  const redrawMs: number[] = [];
  const textMs: number[] = [];
  // The model alone, without Ink: what the session's interval costs the view before drawing.
  const bare = new TopController({
    backend: 'tracefs',
    capabilities: CAPS,
    label: (d) => locationLabel(d, lookup),
    now: Date.now,
  });
  const drawn = new TopController({
    backend: 'tracefs',
    capabilities: CAPS,
    label: (d) => locationLabel(d, lookup),
    now: Date.now,
  });
  const terminal = new NullTerminal();
  const instance = render(h(TopApp, { controller: drawn, colour: true }), {
    stdout: terminal as unknown as NodeJS.WriteStream,
    stdin: new NullKeys() as unknown as NodeJS.ReadStream,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const text = buildTextRenderer({ symbols: { lookup, ready: async () => {} }, colour: false, capabilities: CAPS });
  const sink = new NullTerminal();
  let bytes = 0;
  try {
    for (let r = 0; r < rounds + 3; r++) {
      const lines = interval(r);
      let t = performance.now();
      bare.observer.interval!({ lines, overflow: null });
      const model = performance.now() - t;
      t = performance.now();
      bare.frame(SIZE);
      const layout = performance.now() - t;
      const before = terminal.writes;
      const b0 = terminal.bytes;
      t = performance.now();
      drawn.observer.interval!({ lines, overflow: null });
      // Ink draws synchronously for an update from outside React; wait in case a release ever schedules it.
      while (terminal.writes === before) await new Promise((resolve) => setImmediate(resolve));
      const redraw = performance.now() - t;
      t = performance.now();
      sink.write(`${lines.map((e) => text.summary(e)).join('\n')}\n`);
      const txt = performance.now() - t;
      // Warm-up rounds are not kept: the first ones create the 4,096 sites and compile the hot paths.
      if (r >= 3) {
        modelMs.push(model);
        layoutMs.push(layout);
        redrawMs.push(redraw);
        textMs.push(txt);
        bytes = terminal.bytes - b0;
      }
      // Past Ink's frame throttle (30 fps), as a real refresh a second apart is.
      await sleep(50);
    }
  } finally {
    instance.unmount();
  }
  if (drawn.model.size !== SITES) throw new Error(`the view holds ${drawn.model.size} sites, not ${SITES}`);
  return {
    sites: SITES,
    rounds,
    modelMs: spread(modelMs),
    layoutMs: spread(layoutMs),
    redrawMs: spread(redrawMs),
    textMs: spread(textMs),
    bytes,
  };
}

/** A private tmux server running `dropwatch --top` in a window of SIZE. */
class TopTerminal {
  private readonly socket = `dwbench-top-${process.pid}`;
  private socketPath = '';
  constructor() {
    const cmd = `exec env -u CI -u CONTINUOUS_INTEGRATION ${process.execPath} ${dropwatchBin} --top -l kas`;
    this.tmux('new-session', '-d', '-s', 'dw', '-x', String(SIZE.columns), '-y', String(SIZE.rows), cmd);
    this.socketPath = this.tmux('display', '-p', '-t', 'dw', '#{socket_path}').trim();
  }
  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }
  screen(): string {
    try {
      return this.tmux('capture-pane', '-p', '-t', 'dw');
    } catch {
      return '';
    }
  }
  pid(): number {
    return Number(this.tmux('display', '-p', '-t', 'dw', '#{pane_pid}').trim());
  }
  total(): number {
    const m = /total ([\d,]+) /.exec(this.screen());
    return m ? Number(m[1]!.replace(/,/g, '')) : 0;
  }
  quit(): void {
    try {
      this.tmux('send-keys', '-t', 'dw', 'q');
    } catch {
      // Gone already.
    }
  }
  close(): void {
    // The server ends by itself with its window; it is only killed if something kept it. Its socket file stays.
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore' });
    if (this.socketPath) rmSync(this.socketPath, { force: true });
  }
}

async function until(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (test()) return true;
    await sleep(50);
  }
  return test();
}

/** Waits until `value()` stops growing for `quietMs` or reaches `target`. */
async function caughtUp(value: () => number, target: number, quietMs: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < end && last < target) {
    await sleep(200);
    const v = value();
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since > quietMs) return;
  }
}

/** A tracefs storm with no monitor, under the text CLI (`-s` into a pipe) and under `--top`, rotated per round. */
export async function runTopStorm(count: number, rounds: number, log: (l: string) => void): Promise<TopStormResult> {
  const ns = new BenchNetns();
  const samples: { config: StormRow['config']; round: number; rate: number; cpuPerDropUs?: number }[] = [];
  const topExcess: number[] = [];
  const textExcess: number[] = [];
  const notes: string[] = [];
  const order: StormRow['config'][] = ['none', 'text', 'top'];
  try {
    for (let round = 0; round < rounds; round++) {
      const configs = [...order.slice(round % 3), ...order.slice(0, round % 3)];
      for (const config of configs) {
        if (config === 'none') {
          const s = await sendDrops(ns, count);
          samples.push({ config, round, rate: s.rate });
        } else if (config === 'text') {
          const m = new MonitorProcess(process.execPath, [dropwatchBin, '-s', '-l', 'kas']);
          if (!(await m.waitFor(() => m.stderr.includes('Kernel monitoring activated.'), 30_000)))
            throw new Error(`dropwatch -s did not start: ${m.stderr.trim()}`);
          const cpu0 = await m.settle();
          const s = await sendDrops(ns, count);
          const counted = () => {
            const c = countDropwatchOutput(m.stdout, m.stderr);
            return c.ours + c.lost + c.unlisted;
          };
          await caughtUp(counted, s.sent, 2500, 20_000);
          const cpu1 = m.cpu() ?? cpu0;
          const pid = m.pid;
          await m.interrupt();
          textExcess.push(counted() - s.sent);
          samples.push({ config, round, rate: s.rate, cpuPerDropUs: (cpu1 - cpu0) / s.sent });
          if (reapInstance(`dropwatch-${pid}`)) notes.push(`text round ${round + 1} left its instance (removed)`);
        } else {
          const term = new TopTerminal();
          try {
            const pid = term.pid();
            if (
              !(await until(
                () => /dropwatch top/.test(term.screen()) && !/Enabling monitoring/.test(term.screen()),
                30_000,
              ))
            )
              throw new Error(`dropwatch --top did not start: ${term.screen()}`);
            await sleep(1500);
            const cpu0 = cpuMicros(pid) ?? 0;
            const before = term.total();
            const s = await sendDrops(ns, count);
            await caughtUp(() => term.total() - before, s.sent, 2500, 20_000);
            const cpu1 = cpuMicros(pid) ?? cpu0;
            topExcess.push(term.total() - before - s.sent);
            samples.push({ config, round, rate: s.rate, cpuPerDropUs: (cpu1 - cpu0) / s.sent });
            term.quit();
            await until(() => cpuMicros(pid) === null, 15_000);
            if (reapInstance(`dropwatch-${pid}`)) notes.push(`--top round ${round + 1} left its instance (removed)`);
          } finally {
            term.close();
          }
        }
        log(`  round ${round + 1} ${config}: ${fmtInt(samples.at(-1)!.rate)}/s`);
      }
    }
  } finally {
    ns.delete();
  }
  const anchor = (round: number) => samples.find((s) => s.config === 'none' && s.round === round)!.rate;
  const rows = order.map((config): StormRow => {
    const mine = samples.filter((s) => s.config === config);
    return {
      config,
      rate: spread(mine.map((s) => s.rate)),
      ratio: spread(mine.map((s) => s.rate / anchor(s.round))),
      cpuPerDropUs: spread(mine.flatMap((s) => (s.cpuPerDropUs === undefined ? [] : [s.cpuPerDropUs]))),
    };
  });
  return { count, rounds, rows, topExcess, textExcess, notes };
}

/** `echo exit | dropwatch -l kas` built from `rev` and from this tree, and `node -e 0`, in one hyperfine run. */
export function runStartupCompare(rev: string, runs: number): StartupCompare {
  if (!which('hyperfine')) throw new Error('needs hyperfine');
  const base = buildBase(rev);
  try {
    const node = shq(process.execPath);
    const view = join(projectRoot, 'dist', 'src', 'top', 'run.js');
    const commands = [
      `echo exit | ${node} ${shq(base.bin)} -l kas`,
      `echo exit | ${node} ${shq(dropwatchBin)} -l kas`,
      `${node} -e 0`,
      `NODE_ENV=production ${node} --input-type=module -e ${shq(`await import(${JSON.stringify(view)})`)}`,
    ];
    const json = join(base.dir, 'startup.json');
    const r = spawnSync(
      'hyperfine',
      ['--warmup', '3', '--runs', String(runs), '--style', 'none', '--export-json', json, ...commands],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`hyperfine failed: ${r.stderr}`);
    const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: { times: number[] }[] }).results;
    const [before, after, bare, importView] = results.map((x) => spread(x.times.map((t) => t * 1000)));
    return { base: rev, runs, tool: 'hyperfine', before: before!, after: after!, node: bare!, importView: importView! };
  } finally {
    removeBase(base);
  }
}

export interface TopBenchOptions {
  rounds: number;
  stormCount: number;
  stormRounds: number;
  startupRuns: number;
  base: string | null;
  log: (line: string) => void;
}

export async function runTopBench(o: TopBenchOptions): Promise<TopBenchResult> {
  const load0 = loadAverage();
  o.log(`[top 1] redraw with ${SITES} sites, ${o.rounds} rounds`);
  const redraw = await runRedraw(o.rounds);
  o.log(`  redraw ${fmtSpread(redraw.redrawMs, 1, ' ms')}; text output ${fmtSpread(redraw.textMs, 1, ' ms')}`);
  let storm: TopBenchResult['storm'];
  if (o.stormRounds === 0) storm = { skipped: 'not run in this invocation (--storm-rounds 0)' };
  else if (!which('tmux')) storm = { skipped: 'tmux not installed' };
  else {
    o.log(`[top 2] storm: ${o.stormCount} drops × ${o.stormRounds} rounds (none, -s, --top)`);
    storm = await runTopStorm(o.stormCount, o.stormRounds, o.log);
  }
  let startup: TopBenchResult['startup'];
  if (!o.base) startup = { skipped: 'no --base REV given' };
  else {
    o.log(`[top 3] startup: ${o.base} against this tree, ${o.startupRuns} runs`);
    startup = runStartupCompare(o.base, o.startupRuns);
  }
  let git = 'unknown';
  try {
    git = execFileSync('git', ['-C', projectRoot, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
  } catch {
    // Not a checkout.
  }
  return {
    date: new Date().toISOString().slice(0, 19) + 'Z',
    git,
    load: [load0, loadAverage()],
    redraw,
    storm,
    startup,
  };
}

const ms = (s: Spread) => fmtSpread(s, 1, ' ms');
const ratio = (a: Spread, b: Spread, digits = 2) => `${(a.median / b.median).toFixed(digits)}×`;

export function renderTopBench(r: TopBenchResult): string {
  const L: string[] = [];
  const d = r.redraw;
  L.push('## 6. Live view (`--top`)');
  L.push('');
  L.push(
    `\`npm run bench -- top\` on ${r.date} (code ${r.git}; load ${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)}). Not part of the default run; written to bench/top.md and included here.`,
  );
  L.push('');
  L.push(
    `**Redraw with ${fmtInt(d.sites)} sites.** Each round is one second of a storm in which all ${fmtInt(d.sites)} sites dropped: the interval's ${fmtInt(d.sites)} aggregated lines go into the view, which redraws through Ink onto a ${SIZE.columns}×${SIZE.rows} terminal that counts bytes (${fmtInt(d.bytes)} per frame). Beside it, in the same round, the text output's work for the same interval: ${fmtInt(d.sites)} summary lines formatted and written. ${d.rounds} rounds after 3 warm-ups; medians (min–max).`,
  );
  L.push('');
  L.push('| Work per interval | ms | vs the 1 s refresh | vs text output |');
  L.push('|---|---|---|---|');
  L.push(
    `| view: model update (add + tick) | ${ms(d.modelMs)} | ${(d.modelMs.median / REFRESH_MS).toFixed(4)} | ${ratio(d.modelMs, d.textMs)} |`,
  );
  L.push(
    `| view: layout of the frame | ${ms(d.layoutMs)} | ${(d.layoutMs.median / REFRESH_MS).toFixed(4)} | ${ratio(d.layoutMs, d.textMs)} |`,
  );
  L.push(
    `| view: whole redraw (update, layout, React, Ink, write) | ${ms(d.redrawMs)} | ${(d.redrawMs.median / REFRESH_MS).toFixed(4)} | ${ratio(d.redrawMs, d.textMs)} |`,
  );
  L.push(
    `| text output: 4,096 lines (anchor) | ${ms(d.textMs)} | ${(d.textMs.median / REFRESH_MS).toFixed(4)} | 1.00× |`,
  );
  L.push('');
  L.push(
    "By profile, most of the redraw is Ink turning the frame into terminal output cell by cell (string widths and ANSI tokens for every character); the view's own work is the first two rows.",
  );
  L.push('');
  if ('skipped' in r.storm) {
    L.push(`**Storm.** Skipped: ${r.storm.skipped}.`);
  } else {
    const s = r.storm;
    L.push(
      `**Drop counting under the view.** ${fmtInt(s.count)} drops per run (the storm benchmark's sender: one NO_SOCKET drop each at \`__udp4_lib_rcv\`), ${s.rounds} rounds, each configuration once per round in rotated order, sender rate divided by the same round's unmonitored rate. \`-s\`: \`dropwatch -s -l kas\` into a pipe; \`--top\`: \`dropwatch --top -l kas\` in a ${SIZE.columns}×${SIZE.rows} tmux window. CPU is the monitor process's, from the start of the storm to caught up.`,
    );
    L.push('');
    L.push('| Configuration | Sender rate (drops/s) | % of no-monitor | Monitor CPU µs/drop |');
    L.push('|---|---|---|---|');
    const label = {
      none: 'no monitor (anchor)',
      text: 'dropwatch -s (text into a pipe)',
      top: 'dropwatch --top (tmux)',
    };
    for (const row of s.rows)
      L.push(
        `| ${label[row.config]} | ${fmtSpread(row.rate, 0)} | ${row.config === 'none' ? '100% (anchor)' : fmtSpread({ ...row.ratio, median: row.ratio.median * 100, min: row.ratio.min * 100, max: row.ratio.max * 100 }, 1, '%')} | ${row.cpuPerDropUs.n ? fmtSpread(row.cpuPerDropUs, 3) : 'n/a'} |`,
      );
    const top = s.rows.find((x) => x.config === 'top')!;
    const text = s.rows.find((x) => x.config === 'text')!;
    L.push('');
    L.push(
      `--top / -s sender rate: ${(top.ratio.median / text.ratio.median).toFixed(3)}. Counted minus sent per round: --top (the view's total) ${s.topExcess.join(', ')}; -s (lines + lost) ${s.textExcess.join(', ')} (more than 0 is others' drops at the same place: the tracepoint is global).`,
    );
    L.push('');
    L.push(
      "The CPU --top adds is its redraw, once a second whatever the rate (the table above), not work per drop: divided over a run's drops it shrinks as the drop rate grows.",
    );
    const shared = [...s.topExcess, ...s.textExcess].some((x) => x > s.count / 100);
    if (shared)
      L.push(
        'Some rounds counted far more than was sent: another storm ran on this machine at the same time, so those rounds compare nothing; the figures above are not clean.',
      );
    for (const n of s.notes) L.push(`- ${n}`);
  }
  L.push('');
  if ('skipped' in r.startup) {
    L.push(`**Start-up.** Skipped: ${r.startup.skipped}.`);
  } else {
    const u = r.startup;
    L.push(
      `**Start-up of a session without the view.** \`echo exit | dropwatch -l kas\` built from ${u.base} (without the view) and from this tree, \`node -e 0\`, and an import of the view module alone, in one ${u.tool} run, ${u.runs} runs each after 3 warm-ups.`,
    );
    L.push('');
    L.push('| Command | Median ms (min–max) | vs node -e 0 |');
    L.push('|---|---|---|');
    L.push(`| dropwatch built without the view (${u.base}) | ${ms(u.before)} | ${ratio(u.before, u.node)} |`);
    L.push(`| dropwatch, this tree | ${ms(u.after)} | ${ratio(u.after, u.node)} |`);
    L.push(`| node -e 0 (anchor) | ${ms(u.node)} | 1.00× |`);
    L.push(
      `| import of the view (Ink, React; --top and top only) | ${ms(u.importView)} | ${ratio(u.importView, u.node)} |`,
    );
    L.push('');
    L.push(`This tree / without the view: ${ratio(u.after, u.before, 3)}.`);
  }
  return L.join('\n');
}
