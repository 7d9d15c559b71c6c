// Benchmark 1: a tracefs drop storm. A fixed number of drops is made with no monitor (the anchor), under perf record,
// under bpftrace, under our dropwatch CLI (and, with --base, the CLI built from another revision) and under a text
// trace_pipe reader, interleaved and repeated; each monitored run is compared with the unmonitored run of the same round.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { buildBase, removeBase, type BaseBuild } from './lib/base-build.js';
import { countDropwatchOutput, reapInstance, TRACEFS, type DropwatchCounts } from './lib/dropwatch-output.js';
import { MonitorProcess } from './lib/monitor.js';
import { BenchNetns } from './lib/netns.js';
import { cpuMicros, cpuSplitMicros, loadAverage, peakRssKiB, which } from './lib/proc.js';
import { dropwatchBin } from './lib/root.js';
import { sendDrops, type SendResult } from './lib/sender.js';
import { median, sleep, spread, type Spread } from './lib/stats.js';

/** The configurations --configs selects from. */
export const STORM_CONFIGS = [
  'none',
  'perf',
  'perf_g',
  'bpftrace',
  'dropwatch',
  'dropwatch_stack',
  'trace_pipe',
] as const;
export type SelectableConfig = (typeof STORM_CONFIGS)[number];

/** Our CLI's configurations and their twins run from the --base build. */
export const BASE_TWIN = { dropwatch: 'dropwatch_base', dropwatch_stack: 'dropwatch_stack_base' } as const;
type OursConfig = keyof typeof BASE_TWIN;
type BaseConfig = (typeof BASE_TWIN)[OursConfig];
export type StormConfig = SelectableConfig | BaseConfig;

/** The report's order: each base twin right under its configuration. */
const REPORT_ORDER: readonly StormConfig[] = [
  'none',
  'perf',
  'perf_g',
  'bpftrace',
  'dropwatch',
  'dropwatch_base',
  'dropwatch_stack',
  'dropwatch_stack_base',
  'trace_pipe',
];

export const CONFIG_LABEL: Record<StormConfig, string> = {
  none: 'no monitor (anchor)',
  perf: 'perf record -e skb:kfree_skb -a -o /dev/null',
  perf_g: 'perf record -g -e skb:kfree_skb -a -o /dev/null (call chains)',
  bpftrace: 'bpftrace @[args->location] = count()',
  dropwatch: 'our dropwatch -l kas (tracefs)',
  dropwatch_base: 'base build: dropwatch -l kas (tracefs)',
  dropwatch_stack: 'our dropwatch -l kas, set stack true (tracefs, call chains)',
  dropwatch_stack_base: 'base build: dropwatch -l kas, set stack true (tracefs, call chains)',
  trace_pipe: 'text trace_pipe reader (cat | grep -c)',
};

const isBaseConfig = (c: StormConfig): c is BaseConfig => Object.values<StormConfig>(BASE_TWIN).includes(c);

/** `main~1 (b56dbf3)`, or the commit alone when that is what was given. */
export function baseName(base: { rev: string; commit: string }): string {
  return base.rev === base.commit ? base.commit : `${base.rev} (${base.commit})`;
}

/** A configuration's label, naming the base build's commit on its twins. */
export function configLabel(config: StormConfig, base?: StormResult['base']): string {
  const label = CONFIG_LABEL[config];
  return base && isBaseConfig(config) ? label.replace('base build', `base build ${base.commit}`) : label;
}

/** `configs` with the base twin of each of our CLI's configurations right after it, so both run in the same rounds. */
export function withBaseTwins(configs: readonly StormConfig[]): StormConfig[] {
  const out = configs.flatMap((c) => (c in BASE_TWIN ? [c, BASE_TWIN[c as OursConfig]] : [c]));
  if (out.length === configs.length) throw new Error('--base compares our CLI: select dropwatch or dropwatch_stack');
  return out;
}

export interface StormSample {
  config: StormConfig;
  round: number;
  sent: number;
  seconds: number;
  rate: number;
  /** Sender rate / the same round's unmonitored rate. */
  ratio?: number;
  /** Monitor process CPU during the storm (µs), and per drop. */
  cpuUs?: number;
  cpuPerDropUs?: number;
  peakRssKiB?: number;
  /** Our CLI's own accounting. */
  counts?: DropwatchCounts;
  /** What another monitor reports it saw (bpftrace's map total at the busiest location, trace_pipe's line count). */
  seen?: number;
  load: number;
  notes: string[];
}

export interface StormResult {
  count: number;
  rounds: number;
  samples: StormSample[];
  skipped: Partial<Record<StormConfig, string>>;
  installNotes: string[];
  /** With --base: the revision the *_base configurations were built from. */
  base?: { rev: string; commit: string };
}

export interface StormSummary {
  config: StormConfig;
  rate: Spread;
  ratio: Spread;
  cpuPerDropUs: Spread;
  peakRssMiB: Spread;
}

interface Ctx {
  ns: BenchNetns;
  count: number;
  log: (line: string) => void;
  base: BaseBuild | null;
}

type Runner = (ctx: Ctx) => Promise<Omit<StormSample, 'config' | 'round' | 'load'>>;

function fromSend(s: SendResult) {
  return { sent: s.sent, seconds: s.seconds, rate: s.rate, notes: [] as string[] };
}

/** Waits until `value()` stops growing for `quietMs`, or reaches `target`, or `maxMs` passes. */
async function waitCaughtUp(value: () => number, target: number, quietMs: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < end) {
    await sleep(100);
    const v = value();
    if (v >= target) return;
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}

const runNone: Runner = async (ctx) => fromSend(await sendDrops(ctx.ns, ctx.count));

const perfRunner =
  (callChains: boolean): Runner =>
  async (ctx) => {
    const m = new MonitorProcess('perf', [
      'record',
      '-q',
      ...(callChains ? ['-g'] : []),
      '-e',
      'skb:kfree_skb',
      '-a',
      '-o',
      '/dev/null',
    ]);
    // perf says nothing when it is ready; wait until it has opened its buffers and gone idle.
    await sleep(300);
    if (!m.running) throw new Error(`perf exited at once: ${m.stderr.trim()}`);
    const cpu0 = await m.settle();
    const s = await sendDrops(ctx.ns, ctx.count);
    await sleep(300); // perf drains its mmap buffers on its own wake-ups
    const cpu1 = m.cpu() ?? cpu0;
    const rss = m.peakRss();
    const code = await m.interrupt();
    const r = {
      ...fromSend(s),
      cpuUs: cpu1 - cpu0,
      cpuPerDropUs: (cpu1 - cpu0) / s.sent,
      peakRssKiB: rss ?? undefined,
    };
    const lost = /lost (\d+)/i.exec(m.stderr);
    if (lost) r.notes.push(`perf reported lost ${lost[1]}`);
    if (code !== 0 && m.signal !== 'SIGINT')
      r.notes.push(`perf exit ${code ?? m.signal}: ${m.stderr.trim().split('\n').pop()}`);
    return r;
  };

const BPF_PROGRAM = 'tracepoint:skb:kfree_skb { @[args->location] = count(); }';

const runBpftrace: Runner = async (ctx) => {
  const m = new MonitorProcess('bpftrace', ['-e', BPF_PROGRAM]);
  const attached = await m.waitFor(() => /Attaching \d+ probe/.test(m.stdout), 60000);
  if (!attached || !m.running) {
    await m.interrupt(3000);
    throw new Error(`bpftrace could not attach: ${(m.stderr || m.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const cpu0 = await m.settle();
  const s = await sendDrops(ctx.ns, ctx.count);
  const cpu1 = m.cpu() ?? cpu0;
  const rss = m.peakRss();
  await m.interrupt();
  // The map is printed at exit: `@[0xffffffff...]: 123` or `@[-2113...]: 123`; our drops are the busiest entry.
  let seen = 0;
  for (const mm of m.stdout.matchAll(/^@\[[^\]]*\]: (\d+)$/gm)) seen = Math.max(seen, Number(mm[1]));
  return {
    ...fromSend(s),
    cpuUs: cpu1 - cpu0,
    cpuPerDropUs: (cpu1 - cpu0) / s.sent,
    peakRssKiB: rss ?? undefined,
    seen,
  };
};

/** Our CLI, from this tree or from the --base build, run the same way. */
const dropwatchRunner =
  (callChains: boolean, build: 'tree' | 'base'): Runner =>
  async (ctx) => {
    const bin = build === 'tree' ? dropwatchBin : ctx.base?.bin;
    if (!bin) throw new Error('no base build (--base REV)');
    const m = new MonitorProcess(process.execPath, [bin, '-l', 'kas'], { stdin: 'pipe' });
    // stdin stays open: at end of input the REPL would exit, and we want it monitoring until SIGINT.
    m.child.stdin!.write(callChains ? 'set stack true\nstart\n' : 'start\n');
    const ready = await m.waitFor(() => m.stdout.includes('Kernel monitoring activated.'), 30000);
    if (!ready) {
      m.child.stdin!.end();
      await m.interrupt(3000);
      throw new Error(
        `dropwatch did not start monitoring: ${(m.stderr + m.stdout).trim().split('\n').slice(-3).join(' | ')}`,
      );
    }
    // Start-up (kallsyms parse, worker start) is measured by the startup benchmark, not billed to the drops.
    const cpu0 = await m.settle();
    const split0 = cpuSplitMicros(m.pid);
    const s = await sendDrops(ctx.ns, ctx.count);
    const accounted = () => {
      const c = countDropwatchOutput(m.stdout, m.stderr);
      return c.ours + c.lost + c.unlisted;
    };
    // Summary lines come once a second; the last partial ring-buffer page only comes out when monitoring stops.
    await waitCaughtUp(accounted, s.sent, 2500, 20000);
    const cpu1 = m.cpu() ?? cpu0;
    const split1 = cpuSplitMicros(m.pid);
    const rss = m.peakRss();
    const pid = m.pid;
    // SIGINT stops monitoring (and drains the last page) and returns to the prompt; end of input then exits.
    const stopping = m.interrupt();
    m.child.stdin!.end();
    const code = await stopping;
    const counts = countDropwatchOutput(m.stdout, m.stderr);
    const r = {
      ...fromSend(s),
      cpuUs: cpu1 - cpu0,
      cpuPerDropUs: (cpu1 - cpu0) / s.sent,
      peakRssKiB: rss ?? undefined,
      counts,
    };
    if (split0 && split1)
      r.notes.push(
        `user ${((split1[0] - split0[0]) / s.sent).toFixed(3)} + sys ${((split1[1] - split0[1]) / s.sent).toFixed(3)} µs/drop`,
      );
    if (code !== 0) r.notes.push(`dropwatch exit ${code ?? m.signal}: ${m.stderr.trim().split('\n').pop()}`);
    if (reapInstance(`dropwatch-${pid}`))
      r.notes.push(`dropwatch left its tracefs instance dropwatch-${pid} behind (removed)`);
    return r;
  };

const runTracePipe: Runner = async (ctx) => {
  const inst = `${TRACEFS}/instances/dwbench-tp-${process.pid}`;
  mkdirSync(inst);
  let m: MonitorProcess | null = null;
  try {
    writeFileSync(`${inst}/events/skb/kfree_skb/enable`, '1');
    // cat is the reader; grep -c counts our lines without node copying 200+ MB through this process.
    m = new MonitorProcess('sh', ['-c', 'cat "$1" | grep -F -c __udp4_lib_rcv', 'sh', `${inst}/trace_pipe`]);
    await sleep(300);
    const kids = childPids(m.pid);
    const catPid = kids.find((p) => comm(p) === 'cat');
    const grepPid = kids.find((p) => comm(p) === 'grep');
    if (catPid === undefined || grepPid === undefined) throw new Error('trace_pipe reader did not start');
    const both = () => (cpuMicros(catPid) ?? 0) + (cpuMicros(grepPid) ?? 0);
    const cpu0 = both();
    const s = await sendDrops(ctx.ns, ctx.count);
    // No progress signal from grep -c; wait until cat goes idle instead.
    await waitCaughtUp(() => cpuMicros(catPid) ?? 0, Infinity, 600, 20000);
    const cpu1 = both();
    const rss = peakRssKiB(catPid);
    writeFileSync(`${inst}/events/skb/kfree_skb/enable`, '0');
    process.kill(catPid, 'SIGINT');
    await m.exited;
    const seen = Number(m.stdout.trim());
    return {
      ...fromSend(s),
      cpuUs: cpu1 - cpu0,
      cpuPerDropUs: (cpu1 - cpu0) / s.sent,
      peakRssKiB: rss ?? undefined,
      seen,
    };
  } finally {
    if (m?.running) await m.interrupt(3000);
    // The instance cannot go while its trace_pipe is open; cat is gone by now, retry briefly.
    for (let i = 0; i < 20; i++) {
      try {
        writeFileSync(`${inst}/events/skb/kfree_skb/enable`, '0');
        rmdirSync(inst);
        break;
      } catch {
        await sleep(100);
      }
    }
  }
};

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

const RUNNERS: Record<StormConfig, Runner> = {
  none: runNone,
  perf: perfRunner(false),
  perf_g: perfRunner(true),
  bpftrace: runBpftrace,
  dropwatch: dropwatchRunner(false, 'tree'),
  dropwatch_base: dropwatchRunner(false, 'base'),
  dropwatch_stack: dropwatchRunner(true, 'tree'),
  dropwatch_stack_base: dropwatchRunner(true, 'base'),
  trace_pipe: runTracePipe,
};

export interface StormOptions {
  count: number;
  rounds: number;
  configs?: readonly StormConfig[];
  /** A git revision to build and run as the *_base twins of our CLI's configurations. */
  base?: string;
  log?: (line: string) => void;
}

/** Which monitors can run here at all; a missing tool is skipped with the reason, never silently. */
export function availability(configs: readonly StormConfig[]): Partial<Record<StormConfig, string>> {
  const skipped: Partial<Record<StormConfig, string>> = {};
  for (const perf of ['perf', 'perf_g'] as const)
    if (configs.includes(perf) && !which('perf')) skipped[perf] = 'perf not installed (apt-get install linux-perf)';
  if (configs.includes('bpftrace') && !which('bpftrace'))
    skipped.bpftrace = 'bpftrace not installed (apt-get install bpftrace)';
  return skipped;
}

export async function runStorm(opts: StormOptions): Promise<StormResult> {
  const log = opts.log ?? (() => {});
  const selected = opts.configs ?? STORM_CONFIGS;
  const configs = opts.base ? withBaseTwins(selected) : selected;
  const skipped = availability(configs);
  let base: BaseBuild | null = null;
  if (opts.base) {
    log(`  building ${opts.base} for ${configs.filter(isBaseConfig).join(', ')}`);
    base = buildBase(opts.base);
    log(`  built ${baseName(base)} in ${base.dir}`);
  }
  const ns = new BenchNetns();
  try {
    const samples = await runRounds(configs, opts.rounds, skipped, { ns, count: opts.count, log, base });
    const result: StormResult = { count: opts.count, rounds: opts.rounds, samples, skipped, installNotes: [] };
    if (base) result.base = { rev: base.rev, commit: base.commit };
    return result;
  } finally {
    ns.delete();
    if (base) removeBase(base);
  }
}

/** Every configuration once per round, in an order rotated per round; each ratio is to the same round's anchor. */
async function runRounds(
  configs: readonly StormConfig[],
  rounds: number,
  skipped: StormResult['skipped'],
  ctx: Ctx,
): Promise<StormSample[]> {
  const samples: StormSample[] = [];
  // One unmeasured warm-up send: the first run after creating a namespace pays for page faults and route setup.
  await sendDrops(ctx.ns, Math.min(ctx.count, 50000));
  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round so no monitor always runs right after the same neighbour.
    const order = configs.map((_, i) => configs[(i + round) % configs.length]!);
    let anchor: number | undefined;
    const roundSamples: StormSample[] = [];
    for (const config of order) {
      if (skipped[config]) continue;
      const load = loadAverage();
      try {
        const r = await RUNNERS[config](ctx);
        const sample: StormSample = { config, round, load, ...r };
        roundSamples.push(sample);
        if (config === 'none') anchor = r.rate;
        ctx.log(describe(sample));
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        // A monitor that cannot run at all will not run next round either: record why once and move on.
        skipped[config] = why;
        ctx.log(`  ${config}: skipped: ${why}`);
      }
      await sleep(500);
    }
    for (const s of roundSamples) if (anchor !== undefined) s.ratio = s.rate / anchor;
    samples.push(...roundSamples);
  }
  return samples;
}

function describe(s: StormSample): string {
  const parts = [
    `  round ${s.round + 1} ${s.config.padEnd(10)} ${Math.round(s.rate).toLocaleString('en-US').padStart(9)}/s`,
  ];
  if (s.cpuPerDropUs !== undefined) parts.push(`cpu ${s.cpuPerDropUs.toFixed(3)} µs/drop`);
  if (s.peakRssKiB !== undefined) parts.push(`rss ${(s.peakRssKiB / 1024).toFixed(1)} MiB`);
  if (s.counts)
    parts.push(
      `counted ${s.counts.ours} lost ${s.counts.lost} unlisted ${s.counts.unlisted} foreign ${s.counts.foreign} (sent ${s.sent})`,
    );
  if (s.seen !== undefined) parts.push(`seen ${s.seen} (sent ${s.sent})`);
  parts.push(`load ${s.load.toFixed(1)}`);
  for (const n of s.notes) parts.push(n);
  return parts.join(', ');
}

export function summarize(result: StormResult): StormSummary[] {
  const out: StormSummary[] = [];
  for (const config of REPORT_ORDER) {
    const ss = result.samples.filter((s) => s.config === config);
    if (ss.length === 0) continue;
    out.push({
      config,
      rate: spread(ss.map((s) => s.rate)),
      ratio: spread(ss.map((s) => s.ratio ?? NaN)),
      cpuPerDropUs: spread(ss.map((s) => s.cpuPerDropUs ?? NaN)),
      peakRssMiB: spread(ss.map((s) => (s.peakRssKiB ?? NaN) / 1024)),
    });
  }
  return out;
}

/**
 * Our accounting across all dropwatch rounds: every round must have counted + lost (+ unlisted) = sent, lost = 0.
 * The base build's rounds are listed too, but only this tree's decide exact and lossless.
 */
export function accounting(result: StormResult): {
  exact: boolean;
  lossless: boolean;
  rows: string[];
  medianExcess: number;
} {
  const rows: string[] = [];
  let exact = true;
  let lossless = true;
  const excess: number[] = [];
  for (const s of result.samples) {
    if (!s.counts) continue;
    const c = s.counts;
    const diff = c.ours + c.lost + c.unlisted - s.sent;
    if (!isBaseConfig(s.config)) {
      excess.push(diff);
      if (diff < 0) exact = false;
      if (c.lost > 0 || c.unlisted > 0) lossless = false;
    }
    rows.push(
      `${s.config} round ${s.round + 1}: sent ${s.sent}, counted ${c.ours}, lost ${c.lost}, unlisted ${c.unlisted}, counted+lost−sent ${diff >= 0 ? '+' : ''}${diff}, other drops seen ${c.foreign}`,
    );
  }
  return { exact, lossless, rows, medianExcess: median(excess) };
}

/** Per pair run with --base: this tree's and the base build's median sender-rate ratio and CPU per drop, side by side. */
export function baseComparison(result: StormResult): string[] {
  if (!result.base) return [];
  const byConfig = new Map(summarize(result).map((s) => [s.config, s]));
  const lines: string[] = [];
  for (const ours of Object.keys(BASE_TWIN) as OursConfig[]) {
    const tree = byConfig.get(ours);
    const base = byConfig.get(BASE_TWIN[ours]);
    if (!tree || !base) continue;
    const pct = (s: StormSummary) => `${(s.ratio.median * 100).toFixed(1)}%`;
    const cpu = (s: StormSummary) => s.cpuPerDropUs.median.toFixed(3);
    const times = (a: number, b: number) => `${(a / b).toFixed(3)}×`;
    lines.push(
      `${ours}, this tree against base ${baseName(result.base)}, medians of ${Math.min(tree.ratio.n, base.ratio.n)} rounds: sender rate ${pct(tree)} vs ${pct(base)} of no-monitor (this/base ${times(tree.ratio.median, base.ratio.median)}); CPU ${cpu(tree)} vs ${cpu(base)} µs/drop (this/base ${times(tree.cpuPerDropUs.median, base.cpuPerDropUs.median)})`,
    );
  }
  return lines;
}
