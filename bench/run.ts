// `npm run bench`: runs the benchmarks (storm, startup, resolver, NET_DM), prints every figure with its anchor ratio,
// and writes BENCHMARKS.md (full run only, unless --out says where). `npm run bench -- soak` runs the soak instead.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeMachine } from './lib/machine.js';
import { loadAverage } from './lib/proc.js';
import { projectRoot } from './lib/root.js';
import { NETDM_LABEL, runNetdm } from './netdm.js';
import { renderReport, targets, type BenchRun } from './report.js';
import { runResolver } from './resolver.js';
import { renderSoak, runSoak } from './soak.js';
import { renderBackpressure, runBackpressure } from './backpressure.js';
import { renderBpfBench, runBpfBench } from './bpf.js';
import { renderTopBench, runTopBench } from './top.js';
import { renderStackLock, runStackLock, type StackLockResult } from './stacklock.js';
import { runStartup } from './startup.js';
import {
  accounting,
  baseComparison,
  configLabel,
  runStorm,
  STORM_CONFIGS,
  summarize,
  type SelectableConfig,
  type StormResult,
} from './storm.js';
import { renderCompare, runCompare, type CompareResult } from './compare.js';
import { fmtSpread } from './lib/stats.js';

const USAGE = `usage: npm run bench -- [--quick] [--only storm,startup,resolver,netdm] [--configs none,perf,perf_g,bpftrace,dropwatch,dropwatch_stack,trace_pipe]
                     [--base REV] [--count N] [--rounds N] [--startup-runs N] [--startup-rounds N] [--rescan-cap-ms N] [--netdm-rounds N] [--out FILE | --no-write] [--json FILE]
       npm run bench -- --render FILE.json [--out FILE]
       npm run bench -- soak [--minutes 10] [--rate 100000] [--out FILE]
       npm run bench -- backpressure [--rounds N] [--count N] [--out FILE]
       npm run bench -- compare --base REV [--configs dropwatch,dropwatch_stack] [--count N] [--rounds N] [--out FILE | --no-write] [--json FILE]
       npm run bench -- compare --render FILE.json [--out FILE]
       npm run bench -- bpf [--rounds N] [--count N] [--out FILE]
       npm run bench -- top [--base REV] [--rounds N] [--count N] [--storm-rounds N] [--startup-runs N] [--out FILE]
       npm run bench -- stacklock [--runs 10] [--seconds 10] [--rate 100000] [--before FILE.json] [--json FILE.json] [--out FILE]`;

interface Args {
  soak: boolean;
  top: boolean;
  backpressure: boolean;
  compare: boolean;
  bpf: boolean;
  stacklock: boolean;
  /** `stacklock`: concurrent runs, and seconds of set_event sampling once they all monitor. */
  runs?: number;
  seconds?: number;
  /** `stacklock`: a run saved with --json on the code before the change, shown above this one. */
  before?: string;
  /** The revision to build as "before": for `top`, its start-up; for the storm, the *_base twins of our CLI. */
  base?: string;
  stormRounds?: number;
  quick: boolean;
  only: Set<string>;
  /** Given with --configs (the anchor added); otherwise each mode's own default. */
  configs?: SelectableConfig[];
  count?: number;
  rounds?: number;
  startupRuns?: number;
  /** Startup: hyperfine invocations, each running every command (before and after side by side with --base). */
  startupRounds?: number;
  rescanCapMs?: number;
  netdmRounds?: number;
  out?: string | null;
  /** Also save the raw figures as JSON; --render re-writes the report from such a file (e.g. after editing bench/analysis/). */
  json?: string;
  render?: string;
  minutes: number;
  rate?: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    soak: false,
    top: false,
    backpressure: false,
    compare: false,
    bpf: false,
    stacklock: false,
    quick: false,
    only: new Set(['storm', 'startup', 'resolver', 'netdm']),
    minutes: 10,
  };
  const num = (v: string | undefined, name: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => argv[++i];
    if (k === 'soak') a.soak = true;
    else if (k === 'top') a.top = true;
    else if (k === 'backpressure') a.backpressure = true;
    else if (k === 'compare') a.compare = true;
    else if (k === 'bpf') a.bpf = true;
    else if (k === 'stacklock') a.stacklock = true;
    else if (k === '--runs') a.runs = num(v(), k);
    else if (k === '--seconds') a.seconds = num(v(), k);
    else if (k === '--before') a.before = v();
    else if (k === '--base') a.base = v();
    else if (k === '--storm-rounds') a.stormRounds = Number(v());
    else if (k === '--quick') a.quick = true;
    else if (k === '--only') a.only = new Set(v()?.split(','));
    else if (k === '--configs') {
      const list = (v() ?? '').split(',') as SelectableConfig[];
      for (const c of list)
        if (!STORM_CONFIGS.includes(c))
          throw new Error(
            `unknown config ${c}${c.endsWith('_base') ? ' (the *_base twins come with --base REV)' : ''}`,
          );
      // The anchor always runs: every other figure is a ratio to it.
      a.configs = list.includes('none') ? list : ['none', ...list];
    } else if (k === '--count') a.count = num(v(), k);
    else if (k === '--rounds') a.rounds = num(v(), k);
    else if (k === '--startup-runs') a.startupRuns = num(v(), k);
    else if (k === '--startup-rounds') a.startupRounds = num(v(), k);
    else if (k === '--rescan-cap-ms') a.rescanCapMs = num(v(), k);
    else if (k === '--netdm-rounds') a.netdmRounds = num(v(), k);
    else if (k === '--out') a.out = v() ?? null;
    else if (k === '--no-write') a.out = null;
    else if (k === '--json') a.json = v();
    else if (k === '--render') a.render = v();
    else if (k === '--minutes') a.minutes = num(v(), k);
    else if (k === '--rate') a.rate = num(v(), k);
    else if (k === '-h' || k === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${k}\n${USAGE}`);
  }
  return a;
}

/** The storm's figures on the console: each configuration's medians, what was skipped, the accounting, base against ours. */
function logStorm(storm: StormResult, log: (line: string) => void): void {
  for (const s of summarize(storm)) {
    log(
      `  ${configLabel(s.config, storm.base).padEnd(46)} rate ${fmtSpread(s.rate, 0)}/s  ratio ${fmtSpread(s.ratio, 3)}  cpu ${fmtSpread(s.cpuPerDropUs, 3, ' µs/drop')}  rss ${fmtSpread(s.peakRssMiB, 1, ' MiB')}`,
    );
  }
  for (const [k, why] of Object.entries(storm.skipped)) log(`  ${k}: skipped (${why})`);
  for (const r of accounting(storm).rows) log(`  ${r}`);
  for (const line of baseComparison(storm)) log(`  ${line}`);
}

const command = () => `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

/** soak, backpressure, top or compare: one section, written to bench/NAME.md. False when the main run was asked for. */
async function runSectionOnItsOwn(args: Args, log: (line: string) => void): Promise<boolean> {
  /** A section run on its own: shown, and written to bench/NAME.md, which BENCHMARKS.md includes (--out elsewhere). */
  const section = (text: string, name: string) => {
    log(text);
    const out = args.out === undefined ? join(projectRoot, 'bench', `${name}.md`) : args.out;
    if (out) {
      writeFileSync(out, `${text}\n`);
      log(`wrote ${out}`);
    }
  };

  if (args.soak) {
    const rate = args.rate ?? 100_000;
    log(`soak: ${args.minutes} min at ${rate}/s`);
    section(renderSoak(await runSoak({ minutes: args.minutes, rate, log })), 'soak');
    return true;
  }

  if (args.stacklock) {
    const r = await runStackLock({
      runs: args.runs ?? 10,
      seconds: args.seconds ?? 10,
      rate: args.rate ?? 100_000,
      log,
    });
    if (args.json) writeFileSync(args.json, JSON.stringify(r, null, 1));
    const before = args.before ? (JSON.parse(readFileSync(args.before, 'utf8')) as StackLockResult) : null;
    section(renderStackLock(r, before), 'stacklock');
    return true;
  }

  if (args.backpressure) {
    const r = await runBackpressure({ rounds: args.rounds ?? 3, count: args.count ?? 300_000, log });
    section(renderBackpressure(r), 'backpressure');
    return true;
  }

  if (args.bpf) {
    const r = await runBpfBench({ rounds: args.rounds ?? 3, count: args.count ?? 1_000_000, log });
    section(renderBpfBench(r), 'bpf');
    return true;
  }

  if (args.top) {
    const r = await runTopBench({
      rounds: args.rounds ?? 30,
      stormCount: args.count ?? 1_000_000,
      stormRounds: args.stormRounds ?? 3,
      startupRuns: args.startupRuns ?? 20,
      base: args.base ?? null,
      log,
    });
    section(renderTopBench(r), 'top');
    return true;
  }

  if (args.compare) {
    if (!args.base) throw new Error(`compare needs --base REV\n${USAGE}`);
    const configs = args.configs ?? ['none', 'dropwatch', 'dropwatch_stack'];
    const count = args.count ?? 300_000;
    const rounds = args.rounds ?? 5;
    log(`compare: ${count} drops × ${rounds} rounds, configs ${configs.join(', ')}, against base ${args.base}`);
    const r = await runCompare({ base: args.base, count, rounds, configs, command: command(), log });
    logStorm(r.storm, log);
    if (args.json) writeFileSync(args.json, JSON.stringify(r, null, 1));
    section(renderCompare(r), 'compare');
    return true;
  }
  return false;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.render) {
    const saved: unknown = JSON.parse(readFileSync(args.render, 'utf8'));
    const [out, text] = args.compare
      ? [args.out ?? join(projectRoot, 'bench', 'compare.md'), renderCompare(saved as CompareResult)]
      : [args.out ?? join(projectRoot, 'BENCHMARKS.md'), renderReport(saved as BenchRun)];
    writeFileSync(out, `${text}\n`);
    console.log(`wrote ${out} from ${args.render}`);
    return;
  }
  if (process.getuid?.() !== 0)
    throw new Error('the benchmarks need root (network namespaces, tracefs, perf, bpftrace)');
  const log = (l: string) => console.log(l);
  if (await runSectionOnItsOwn(args, log)) return;

  if (args.base && !args.only.has('storm') && !args.only.has('startup'))
    throw new Error('--base compares builds in the storm, the startup (or `top`): add storm or startup to --only');
  const quick = args.quick;
  const run: BenchRun = {
    machine: describeMachine(),
    mode: quick ? 'quick' : 'full',
    command: command(),
    loadBefore: loadAverage(),
    loadAfter: NaN,
  };
  log(
    `machine: ${run.machine.nproc} × ${run.machine.model}, kernel ${run.machine.kernel}, node ${run.machine.node}, load ${run.loadBefore}`,
  );

  if (args.only.has('storm')) {
    const count = args.count ?? (quick ? 200_000 : 2_000_000);
    const rounds = args.rounds ?? (quick ? 1 : 3);
    const configs = args.configs ?? [...STORM_CONFIGS];
    log(
      `\n[1] tracefs drop storm: ${count} drops × ${rounds} rounds, configs ${configs.join(', ')}${args.base ? `, against base ${args.base}` : ''}`,
    );
    run.storm = await runStorm({ count, rounds, configs, base: args.base, log });
    logStorm(run.storm, log);
  }
  if (args.only.has('startup')) {
    const runs = args.startupRuns ?? (quick ? 5 : 20);
    const rounds = args.startupRounds ?? (quick ? 1 : 3);
    log(`\n[2] startup: ${rounds} round(s) of ${runs} runs${args.base ? `, against base ${args.base}` : ''}`);
    run.startup = await runStartup(runs, { rounds, ...(args.base ? { base: args.base } : {}) });
    const s = run.startup;
    log(
      `  dropwatch ${fmtSpread(s.dropwatch, 1, ' ms')}; --version ${s.version ? fmtSpread(s.version, 1, ' ms') : 'n/a'}; floor ${s.floor ? fmtSpread(s.floor, 1, ' ms') : 'n/a'}; node -e 0 ${fmtSpread(s.node, 1, ' ms')}; ratio ${s.ratio.toFixed(2)}×, --version ${s.versionRatio?.toFixed(2) ?? 'n/a'}× (${s.tool})`,
    );
    if (s.base)
      log(
        `  base ${s.base.commit}: dropwatch ${fmtSpread(s.base.dropwatch, 1, ' ms')}; --version ${fmtSpread(s.base.version, 1, ' ms')}; ratio ${s.base.ratio.toFixed(2)}×, --version ${s.base.versionRatio.toFixed(2)}×`,
      );
  }
  if (args.only.has('resolver')) {
    log('\n[3] resolver');
    const r = runResolver({
      distinct: 1000,
      buildRepeats: quick ? 3 : 9,
      freshRuns: quick ? 3 : 9,
      rescanCapMs: args.rescanCapMs ?? (quick ? 3000 : 150_000),
    });
    run.resolver = r;
    log(
      `  kallsyms ${r.lines} lines; read ${fmtSpread(r.readMs, 1, ' ms')}; build in a fresh process ${fmtSpread(r.buildFreshMs, 1, ' ms')}, warm ${fmtSpread(r.buildWarmMs, 1, ' ms')}`,
    );
    log(
      `  lookups ${(r.lookupsPerSec.median / 1e6).toFixed(2)} M/s (index), ${(r.cachedLookupsPerSec.median / 1e6).toFixed(1)} M/s (cached)`,
    );
    log(
      `  ${r.distinct} distinct: ours ${r.oursTotalMs.toFixed(0)} ms vs rescan ${(r.rescanTotalMs / 1000).toFixed(1)} s → ${r.ratio.toFixed(0)}×`,
    );
    for (const n of r.notes) log(`  ${n}`);
  }
  if (args.only.has('netdm')) {
    const rounds = args.netdmRounds ?? (quick ? 1 : 3);
    log(`\n[4] NET_DM packet mode (one qemu boot, ${rounds} round(s))`);
    run.netdm = await runNetdm({ rounds, log });
    const n = run.netdm;
    if (n.status !== 'measured') log(`  not measured: ${n.reason}`);
    for (const s of n.summary)
      log(
        `  ${NETDM_LABEL[s.reader].padEnd(62)} ${fmtSpread(s.rate, 0)}/s${s.lowerBound ? ' (sender-limited: at least)' : ''}  ratio ${fmtSpread(s.ratio, 2)}  cpu ${fmtSpread(s.cpuPerAlertUs, 0, ' µs/alert')}`,
      );
    for (const r of n.runs)
      log(
        `  round ${r.round + 1} ${r.reader}: sent ${r.sent}, written ${r.written}, lost ${r.ownLost ?? r.kernelSocketDrops}, tail ${r.ownTail ?? r.kernelTailDrops}, balance ${r.balance}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`,
      );
    for (const x of n.notes) log(`  ${x}`);
  }
  run.loadAfter = loadAverage();

  log('\ntargets:');
  for (const t of targets(run))
    log(`  [${t.met === null ? ' ' : t.met ? 'met' : 'MISSED'}] ${t.figure}: ${t.value} (target ${t.target})`);

  // Only a full run replaces the committed BENCHMARKS.md; a quick run prints unless told where to write.
  const out = args.out === undefined ? (quick ? null : join(projectRoot, 'BENCHMARKS.md')) : args.out;
  if (args.json) writeFileSync(args.json, JSON.stringify(run, null, 1));
  if (out) {
    writeFileSync(out, `${renderReport(run)}\n`);
    log(`\nwrote ${out}`);
  }
}

// Ctrl-C: leave through process.exit so the namespace's exit hook deletes it (children get the same SIGINT).
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
