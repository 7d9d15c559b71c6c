// Call chains and the host's tracing lock (issue 22): N dropwatch runs at once under a flood, without and with
// --stack. How long each run takes to activate, how long reading the global set_event waits meanwhile (the tracing
// lock every tracefs user shares), and how many chains a run samples a second. Run with
// `npm run bench -- stacklock [--runs 10] [--seconds 10] [--rate 100000] [--before FILE.json] [--json FILE.json]`.
import { readFileSync } from 'node:fs';
import { provenance } from './lib/machine.js';
import { MonitorProcess } from './lib/monitor.js';
import { BenchNetns } from './lib/netns.js';
import { loadAverage } from './lib/proc.js';
import { dropwatchBin } from './lib/root.js';
import { sendDrops } from './lib/sender.js';
import { fmtSpread, sleep, spread, type Spread } from './lib/stats.js';

const SET_EVENT = '/sys/kernel/tracing/set_event';
const ACTIVATED = 'Kernel monitoring activated.';
/** How often the global set_event is read while the runs monitor. */
const SAMPLE_MS = 100;

export interface StackLockPhase {
  stack: boolean;
  /** Per run: spawn to "Kernel monitoring activated.", ms (NaN: never activated). */
  activationMs: number[];
  /** Each timed read of the global set_event while every run monitored, ms. */
  setEventMs: number[];
  /** Per run and one-second interval: chains sampled (--stack only). */
  chainsPerRunSecond: number[];
  /** Drops the runs reported lost, summed. */
  lost: number;
}

export interface StackLockResult {
  runs: number;
  seconds: number;
  rate: number;
  phases: StackLockPhase[];
  machine: string;
  load: number[];
  date: string;
  git: string;
}

/** Reads set_event once and returns how long the read took, ms. */
function timeSetEvent(): number {
  const t0 = process.hrtime.bigint();
  readFileSync(SET_EVENT, 'utf8');
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Chains per (run, interval) and lost drops, from the runs' JSON output. */
function readOutputs(runs: MonitorProcess[]): { chains: number[]; lost: number } {
  const chains: number[] = [];
  let lost = 0;
  for (const run of runs) {
    const perInterval = new Map<string, number>();
    for (const line of run.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as { type: string; time: string; lost?: number; stacks?: { sampled: number } };
      if (e.type === 'lost') lost += e.lost ?? 0;
      if (e.stacks) perInterval.set(e.time, (perInterval.get(e.time) ?? 0) + e.stacks.sampled);
    }
    chains.push(...perInterval.values());
  }
  return { chains, lost };
}

/** Starts `runs` dropwatch runs at once, waits for all to activate, samples set_event for `seconds`, stops them. */
async function runPhase(opts: { stack: boolean; runs: number; seconds: number }): Promise<StackLockPhase> {
  const args = ['-s', '-f', 'json', '-l', 'kas', '--filter', 'reason == NO_SOCKET', ...(opts.stack ? ['--stack'] : [])];
  const t0 = performance.now();
  const runs = Array.from({ length: opts.runs }, () => new MonitorProcess(process.execPath, [dropwatchBin, ...args]));
  try {
    const activationMs = await Promise.all(
      runs.map(async (run) => {
        const ok = await run.waitFor(() => run.stderr.includes(ACTIVATED), 180_000);
        return ok ? performance.now() - t0 : NaN;
      }),
    );
    const setEventMs: number[] = [];
    const end = performance.now() + opts.seconds * 1000;
    while (performance.now() < end) {
      setEventMs.push(timeSetEvent());
      await sleep(SAMPLE_MS);
    }
    await Promise.all(runs.map((run) => run.interrupt()));
    const { chains, lost } = readOutputs(runs);
    return { stack: opts.stack, activationMs, setEventMs, chainsPerRunSecond: chains, lost };
  } finally {
    for (const run of runs) if (run.running) run.child.kill('SIGKILL');
  }
}

export async function runStackLock(opts: {
  runs: number;
  seconds: number;
  rate: number;
  log: (l: string) => void;
}): Promise<StackLockResult> {
  const ns = new BenchNetns();
  const load = [loadAverage()];
  const phases: StackLockPhase[] = [];
  let senderPid = -1;
  // One sender for both phases, far longer than they take; killed at the end.
  const sending = sendDrops(ns, opts.rate * 3600, opts.rate, (pid) => (senderPid = pid)).catch(() => null);
  try {
    await sleep(500);
    for (const stack of [false, true]) {
      const p = await runPhase({ stack, runs: opts.runs, seconds: opts.seconds });
      phases.push(p);
      load.push(loadAverage());
      opts.log(
        `  ${stack ? '--stack' : 'no --stack'}: activation ${fmtSpread(spread(p.activationMs), 0, ' ms')}; ` +
          `set_event ${fmtSpread(spread(p.setEventMs), 1, ' ms')}; chains/run/s ${fmtSpread(spread(p.chainsPerRunSecond), 0)}; lost ${p.lost}`,
      );
    }
  } finally {
    if (senderPid > 0) process.kill(senderPid, 'SIGTERM');
    await sending;
    ns.delete();
  }
  const { machine, date, git } = provenance();
  return {
    runs: opts.runs,
    seconds: opts.seconds,
    rate: opts.rate,
    phases,
    machine,
    load,
    date,
    git,
  };
}

/** The n-th percentile (0–100) of xs, nearest rank. */
function percentile(xs: readonly number[], n: number): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((n / 100) * s.length) - 1)]!;
}

const ms = (x: number) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms` : 'never');

/** The slowest run's activation with --stack over the slowest without, and the longest set_event read with --stack. */
export function stackLockTargets(r: StackLockResult): { activationRatio: number; setEventMaxMs: number } {
  const without = r.phases.find((p) => !p.stack);
  const withStack = r.phases.find((p) => p.stack);
  const slowest = (p: StackLockPhase | undefined) =>
    p ? Math.max(...p.activationMs.map((x) => (Number.isNaN(x) ? Infinity : x))) : NaN;
  return {
    activationRatio: slowest(withStack) / slowest(without),
    setEventMaxMs: withStack ? Math.max(...withStack.setEventMs) : NaN,
  };
}

function phaseRow(label: string, p: StackLockPhase): string {
  const act = spread(p.activationMs);
  const slowest = Math.max(...p.activationMs.map((x) => (Number.isNaN(x) ? Infinity : x)));
  const chains: Spread = spread(p.chainsPerRunSecond);
  return (
    `| ${label} | ${ms(act.median)} | ${ms(slowest)} | ${ms(percentile(p.setEventMs, 50))} | ` +
    `${ms(percentile(p.setEventMs, 95))} | ${ms(Math.max(...p.setEventMs))} | ` +
    `${p.stack ? (chains.n === 0 ? 'none' : `${chains.median.toFixed(0)} (${chains.min}–${chains.max})`) : '—'} | ${p.lost} |`
  );
}

function renderTable(L: string[], r: StackLockResult): void {
  L.push(
    '| runs | activation: median | activation: slowest | reading set_event: median | 95th percentile | longest | chains per run and second | lost |',
  );
  L.push('|---|---|---|---|---|---|---|---|');
  for (const p of r.phases) L.push(phaseRow(`${r.runs} runs${p.stack ? ', --stack' : ''}`, p));
  const t = stackLockTargets(r);
  L.push('');
  L.push(
    `With --stack, the slowest run activated in ${t.activationRatio.toFixed(2)}× the time of the slowest without ` +
      `(target ≤ 2×: ${t.activationRatio <= 2 ? 'met' : '**missed**'}); the longest read of set_event took ` +
      `${ms(t.setEventMaxMs)} (target < 100 ms: ${t.setEventMaxMs < 100 ? 'met' : '**missed**'}).`,
  );
}

function describe(r: StackLockResult): string {
  return `\`npm run bench -- stacklock --runs ${r.runs} --seconds ${r.seconds} --rate ${r.rate}\` on ${r.date} (commit ${r.git}; ${r.machine})`;
}

/** The section, with the run on the code before the change first when one is given. */
export function renderStackLock(r: StackLockResult, before: StackLockResult | null): string {
  const L: string[] = [];
  L.push("## 10. Call chains and the host's tracing lock");
  L.push('');
  L.push(
    `${r.runs} dropwatch runs (\`-s -f json --filter 'reason == NO_SOCKET'\`) started at once while one sender makes ` +
      `${r.rate.toLocaleString('en-US')} drops/s, first without, then with \`--stack\`. "Activation": from the spawn to ` +
      `\`Kernel monitoring activated.\`. "Reading set_event": a read of the global \`set_event\` every ${SAMPLE_MS} ms ` +
      `for ${r.seconds} s once all runs monitor, timed in the bench process: it waits for the tracing lock as ` +
      '`cat` does, without the cost of starting a process.',
  );
  L.push('');
  if (before) {
    L.push(`Before (the trigger re-armed every second): ${describe(before)}.`);
    L.push('');
    renderTable(L, before);
    L.push('');
    L.push(`After: ${describe(r)}.`);
  } else L.push(`${describe(r)}.`);
  L.push('');
  renderTable(L, r);
  L.push('');
  L.push(`Load average during the runs: ${Math.min(...r.load).toFixed(1)}–${Math.max(...r.load).toFixed(1)}.`);
  return L.join('\n');
}
