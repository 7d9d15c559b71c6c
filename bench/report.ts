// Turns one bench run into BENCHMARKS.md: machine, method, the figures with their anchors and ratios, targets met or
// missed, the raw per-round rows so a reader can judge the noise, and under each section its hand-written analysis.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Machine } from './lib/machine.js';
import { projectRoot } from './lib/root.js';
import { fmtInt, fmtSpread, type Spread } from './lib/stats.js';
import { NETDM_LABEL, type NetdmResult } from './netdm.js';
import type { ResolverResult } from './resolver.js';
import type { StartupResult } from './startup.js';
import {
  accounting,
  baseComparison,
  baseName,
  configLabel,
  summarize,
  type StormConfig,
  type StormResult,
} from './storm.js';

export interface BenchRun {
  machine: Machine;
  mode: 'full' | 'quick';
  command: string;
  loadBefore: number;
  loadAfter: number;
  storm?: StormResult;
  startup?: StartupResult;
  resolver?: ResolverResult;
  netdm?: NetdmResult;
}

export interface Target {
  figure: string;
  value: string;
  target: string;
  met: boolean | null;
}

const pct = (s: Spread) => fmtSpread({ ...s, median: s.median * 100, min: s.min * 100, max: s.max * 100 }, 1, '%');

export function targets(run: BenchRun): Target[] {
  const t: Target[] = [];
  if (run.storm) {
    const dw = summarize(run.storm).find((s) => s.config === 'dropwatch');
    const acc = accounting(run.storm);
    if (dw) {
      t.push({
        figure: 'storm: sender rate under dropwatch / no monitor',
        value: pct(dw.ratio),
        target: '≥ 90%',
        met: dw.ratio.median >= 0.9,
      });
      t.push({
        figure: 'storm: every drop counted (counted + lost ≥ sent) and lost = 0',
        value: `${acc.exact ? 'yes' : 'NO'}; lost ${acc.lossless ? '0' : '> 0'}`,
        target: 'exact, lost 0',
        met: acc.exact && acc.lossless,
      });
      t.push({
        figure: 'storm: dropwatch CPU per drop',
        value: fmtSpread(dw.cpuPerDropUs, 3, ' µs'),
        target: '≤ 0.5 µs',
        met: dw.cpuPerDropUs.median <= 0.5,
      });
      t.push({
        figure: 'storm: dropwatch peak RSS (VmHWM)',
        value: fmtSpread(dw.peakRssMiB, 1, ' MiB'),
        target: '≤ 80 MB',
        met: dw.peakRssMiB.max * 1.048576 <= 80,
      });
    } else {
      t.push({
        figure: 'storm: dropwatch',
        value: `not measured: ${run.storm.skipped.dropwatch ?? 'not run'}`,
        target: '',
        met: false,
      });
    }
  }
  if (run.startup) {
    const s = run.startup;
    t.push({
      figure: 'startup: `echo exit \\| dropwatch -l kas` median',
      value:
        `${s.dropwatch.median.toFixed(0)} ms` +
        (s.floor ? ` (commander + a readline prompt alone: ${s.floor.median.toFixed(0)} ms)` : ''),
      target: '≤ 150 ms',
      met: s.dropwatch.median <= 150,
    });
    t.push({
      figure: 'startup: ratio to bare `node -e 0`',
      value: `${s.ratio.toFixed(2)}×`,
      target: '≤ 1.5×',
      met: s.ratio <= 1.5,
    });
    if (s.versionRatio !== undefined)
      t.push({
        figure: 'startup: `dropwatch --version`, ratio to bare `node -e 0`',
        value: `${s.versionRatio.toFixed(2)}×`,
        target: '≤ 1.5×',
        met: s.versionRatio <= 1.5,
      });
  }
  if (run.resolver) {
    const r = run.resolver;
    // A dropwatch run builds the index once, in a fresh process: that is the figure users pay; warm is shown too.
    t.push({
      figure: 'resolver: index build, live kallsyms, first build in a fresh process (after the read)',
      value: fmtSpread(r.buildFreshMs, 1, ' ms'),
      target: '≤ 50 ms',
      met: r.buildFreshMs.median <= 50,
    });
    t.push({
      figure: 'resolver: index build, warm (repeated in one process)',
      value: fmtSpread(r.buildWarmMs, 1, ' ms'),
      target: '≤ 50 ms',
      met: r.buildWarmMs.median <= 50,
    });
    t.push({
      figure: 'resolver: lookups/s, index.resolve (no cache)',
      value: `${(r.lookupsPerSec.median / 1e6).toFixed(1)} M/s`,
      target: '≥ 5 M/s',
      met: r.lookupsPerSec.median >= 5e6,
    });
    t.push({
      figure: 'resolver: lookups/s, cachedResolver (the CLI path)',
      value: `${(r.cachedLookupsPerSec.median / 1e6).toFixed(1)} M/s`,
      target: '≥ 5 M/s',
      met: r.cachedLookupsPerSec.median >= 5e6,
    });
  }
  if (run.netdm?.status === 'measured' && run.netdm.summary) {
    const n = run.netdm;
    // A reader that never lost an alert was held back by the sender: its rate is a floor. Ours as the numerator makes
    // the ratio a lower bound; the anchor as the denominator makes it an upper bound.
    const anchorLimited = n.runs.some((r) => r.reader === 'dwdump' && r.senderLimited);
    for (const s of n.summary) {
      if (s.reader === 'dwdump') continue;
      const bound =
        s.lowerBound && anchorLimited
          ? ' (both sender-limited)'
          : s.lowerBound
            ? ' (ours sender-limited: a lower bound)'
            : anchorLimited
              ? ' (anchor sender-limited: an upper bound)'
              : '';
      t.push({
        figure: `NET_DM packet mode: ${NETDM_LABEL[s.reader]}, sustained alerts/s with nothing lost / Debian dwdump`,
        value: `${fmtSpread(s.ratio, 2, '×')}${bound}`,
        target: '≥ 1.0×',
        met: s.ratio.median >= 1.0,
      });
    }
    const runs = n.runs.filter((r) => r.reader !== 'dwdump');
    t.push({
      figure: 'NET_DM packet mode: our accounting, written + lost on socket + tail dropped = sent',
      value: runs.every((r) => r.exact)
        ? `exact in all ${runs.length} runs`
        : `off in ${runs.filter((r) => !r.exact).length} of ${runs.length} runs`,
      target: 'exact',
      met: runs.every((r) => r.exact),
    });
  }
  return t;
}

/** A pipe inside a table cell ends the cell: the trace_pipe label has one. */
const cell = (s: string) => s.replace(/\|/g, '\\|');

const yes = (m: boolean | null) => (m === null ? '—' : m ? 'met' : '**missed**');

/** The report's sections, each with its hand-written analysis in bench/analysis/KEY.md. */
export type SectionKey =
  'storm' | 'startup' | 'resolver' | 'netdm' | 'soak' | 'top' | 'backpressure' | 'compare' | 'bpf' | 'stacklock';

/** Sections run on their own (`npm run bench -- KEY`), which write bench/KEY.md; the latest of each is included. */
const SEPARATE_SECTIONS: readonly SectionKey[] = ['soak', 'top', 'backpressure', 'compare', 'bpf', 'stacklock'];

export const analysisPath = (key: SectionKey) => join(projectRoot, 'bench', 'analysis', `${key}.md`);

/** The section's analysis, after its figures: it interprets the committed results, so it goes where they are shown. */
function pushAnalysis(L: string[], key: SectionKey): void {
  const file = analysisPath(key);
  if (!existsSync(file)) return;
  L.push('### Analysis');
  L.push('');
  L.push(readFileSync(file, 'utf8').trim());
  L.push('');
}

export function renderReport(run: BenchRun): string {
  const L: string[] = [];
  renderHeader(L, run);
  // The analyses are written against a full run's figures; next to a quick run's they would mislead.
  const analyse = (key: SectionKey) => {
    if (run.mode === 'full') pushAnalysis(L, key);
  };
  if (run.storm) {
    renderStorm(L, run.storm);
    analyse('storm');
  }
  if (run.startup) {
    renderStartup(L, run.startup);
    analyse('startup');
  }
  if (run.resolver) {
    renderResolver(L, run.resolver);
    analyse('resolver');
  }
  renderNetdm(L, run.netdm);
  if (run.netdm?.status === 'measured') analyse('netdm');

  // The separate sections' figures are the committed ones whatever this run was, so their analyses always fit.
  for (const key of SEPARATE_SECTIONS) {
    const file = join(projectRoot, 'bench', `${key}.md`);
    if (!existsSync(file)) continue;
    L.push(readFileSync(file, 'utf8').trim());
    L.push('');
    pushAnalysis(L, key);
  }
  return L.join('\n');
}

function renderHeader(L: string[], run: BenchRun): void {
  const m = run.machine;
  L.push('# Benchmarks');
  L.push('');
  L.push(
    `Generated by \`${run.command}\` (${run.mode} run) on ${m.date}. Regenerate with \`npm run bench\` (root; writes this file);`,
  );
  L.push(
    '`npm run bench -- --quick` is a short run that prints only; `npm run bench -- soak` is the 10-minute soak and `npm run bench -- top` the live view (neither runs by default).',
  );
  L.push('');
  L.push(
    'Every figure is a **ratio against an anchor measured side by side in the same run**: the machine is shared with other',
  );
  L.push(
    'engineers running test suites on the same 2 cores, so absolute times drift by tens of percent between minutes. Absolute',
  );
  L.push('values are printed too, as medians with the (min–max) spread over the repeats.');
  L.push('');
  L.push(
    'Under each section, a short hand-written analysis (`bench/analysis/`) says what its figures mean next to the tools',
  );
  L.push(
    'you would use instead, and what limits them; `npm run bench -- --render FILE.json` re-renders this file from a run saved with `--json`.',
  );
  L.push('');
  L.push('## Machine');
  L.push('');
  L.push(`- CPU: ${m.nproc} × ${m.model}; ${m.memGiB} GiB RAM`);
  L.push(`- Kernel: ${m.kernel} (no NET_DM; tracefs with skb:kfree_skb)`);
  L.push(`- Node: ${m.node}`);
  L.push(`- Code: ${m.git}`);
  L.push(
    `- Tools: ${Object.entries(m.tools)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}`,
  );
  L.push(
    `- 1-minute load average: ${run.loadBefore.toFixed(1)} at the start, ${run.loadAfter.toFixed(1)} at the end (2 cores: anything above ~2 means other work competed)`,
  );
  L.push('');
  L.push('## Targets');
  L.push('');
  L.push('| Figure | Measured | Target | |');
  L.push('|---|---|---|---|');
  for (const t of targets(run)) L.push(`| ${t.figure} | ${t.value} | ${t.target} | ${yes(t.met)} |`);
  L.push('');
}

function renderStorm(L: string[], storm: StormResult): void {
  L.push('## 1. tracefs drop storm');
  L.push('');
  L.push(
    `${fmtInt(storm.count)} drops per run (UDP datagrams of 1 byte to closed port 9 on 127.0.0.1 in a private network namespace,`,
  );
  L.push(
    'one NO_SOCKET `kfree_skb` at `__udp4_lib_rcv` each), sent by one Python process calling `sendmmsg(2)` through ctypes,',
  );
  L.push(
    `1024 datagrams per call. ${storm.rounds} rounds; in each round every configuration runs once, in an order rotated per round,`,
  );
  L.push(
    'and its sender rate is divided by the unmonitored rate of the same round. Monitor CPU is utime+stime of the monitor',
  );
  L.push('process(es) from `/proc/<pid>/stat` between "ready and idle" and "caught up" (start-up excluded; 10 ms tick');
  L.push(
    "resolution); peak RSS is `VmHWM`. The kernel-side cost of the tracepoint itself (and bpftrace's in-kernel program) is",
  );
  L.push('charged to the sender, which is why the sender-rate ratio is the headline figure.');
  if (storm.base)
    L.push(
      `The base build rows run our CLI built from ${baseName(storm.base)} (\`--base\`) exactly as this tree's, in the same rounds.`,
    );
  L.push('');
  renderStormFigures(L, storm);
}

/** The storm's table, base comparison, accounting and every run: section 1's figures, and the compare section's. */
export function renderStormFigures(L: string[], storm: StormResult): void {
  L.push('| Configuration | Sender rate (drops/s) | % of no-monitor | Monitor CPU µs/drop | Peak RSS MiB |');
  L.push('|---|---|---|---|---|');
  for (const s of summarize(storm)) {
    L.push(
      `| ${cell(configLabel(s.config, storm.base))} | ${fmtSpread(s.rate, 0)} | ${s.config === 'none' ? '100% (anchor)' : pct(s.ratio)} | ${fmtSpread(s.cpuPerDropUs, 3)} | ${fmtSpread(s.peakRssMiB, 1)} |`,
    );
  }
  for (const [k, why] of Object.entries(storm.skipped))
    L.push(`| ${cell(configLabel(k as StormConfig, storm.base))} | skipped: ${why} | | | |`);
  L.push('');
  const comparison = baseComparison(storm);
  for (const line of comparison) L.push(`- ${line}`);
  if (comparison.length) L.push('');
  const acc = accounting(storm);
  L.push(
    'Our accounting per round (the CLI\'s printed summary lines for `__udp4_lib_rcv` / NO_SOCKET, plus its "Lost" lines):',
  );
  L.push('');
  for (const r of acc.rows) L.push(`- ${r}`);
  L.push('');
  L.push(
    'A positive counted+lost−sent is drops made by someone else at the same place in the same seconds: the tracepoint is',
  );
  if (storm.samples.some((s) => s.config === 'bpftrace')) {
    L.push(
      "global (not namespace-aware) and other engineers' tests send UDP to closed ports too. bpftrace's own count of the",
    );
    L.push('busiest location in its runs shows the same kind of excess.');
  } else L.push("global (not namespace-aware) and other engineers' tests send UDP to closed ports too.");
  L.push('');
  L.push('<details><summary>Every run</summary>');
  L.push('');
  L.push(
    '| Round | Configuration | Sent | Seconds | Rate/s | Ratio | CPU µs/drop | RSS MiB | Seen / counted | Load | Notes |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of storm.samples) {
    const seen = s.counts ? `${s.counts.ours} (+lost ${s.counts.lost})` : s.seen !== undefined ? String(s.seen) : '';
    L.push(
      `| ${s.round + 1} | ${s.config} | ${s.sent} | ${s.seconds.toFixed(2)} | ${fmtInt(s.rate)} | ${s.ratio?.toFixed(3) ?? ''} | ${s.cpuPerDropUs?.toFixed(3) ?? ''} | ${s.peakRssKiB ? (s.peakRssKiB / 1024).toFixed(1) : ''} | ${seen} | ${s.load.toFixed(1)} | ${s.notes.join('; ')} |`,
    );
  }
  L.push('');
  L.push('</details>');
  L.push('');
}

function renderStartup(L: string[], s: StartupResult): void {
  L.push('## 2. Startup');
  L.push('');
  L.push(
    `\`echo exit | node bin/dropwatch -l kas\` (auto backend: NET_DM probe, then the tracefs backend opens; its private instance is only made at \`start\`;`,
  );
  L.push(
    `kallsyms loads in the background) and \`node bin/dropwatch --version\` against \`node -e 0\`, ${s.runs} runs each after 3 warm-ups, with ${s.tool}. ${s.notes.join('; ')}.`,
  );
  if (s.floor)
    L.push(
      'The floor is `bench/startup-floor.ts` given the same `echo exit`: commander parses `-l kas` and readline shows the prompt, with none of our code: what node and our dependencies cost before dropwatch does anything.',
    );
  if (s.base)
    L.push(
      `"Before" is \`${s.base.rev}\` (${s.base.commit}), built beside this tree and run in the same rounds with the same node.`,
    );
  L.push('');
  const ratio = (x: number | undefined) => (x === undefined ? '' : `${x.toFixed(2)}×`);
  L.push('| Command | Median ms (min–max) | Ratio of medians to `node -e 0` |');
  L.push('|---|---|---|');
  L.push(`| dropwatch (prompt) | ${fmtSpread(s.dropwatch, 1)} | ${ratio(s.ratio)} |`);
  if (s.version) L.push(`| dropwatch --version | ${fmtSpread(s.version, 1)} | ${ratio(s.versionRatio)} |`);
  if (s.base) {
    L.push(`| before: dropwatch (prompt) | ${fmtSpread(s.base.dropwatch, 1)} | ${ratio(s.base.ratio)} |`);
    L.push(`| before: dropwatch --version | ${fmtSpread(s.base.version, 1)} | ${ratio(s.base.versionRatio)} |`);
  }
  if (s.floor)
    L.push(
      `| floor: commander + readline prompt | ${fmtSpread(s.floor, 1)} | ${ratio(s.floor.median / s.node.median)} |`,
    );
  L.push(`| node -e 0 (anchor) | ${fmtSpread(s.node, 1)} | 1.00× |`);
  L.push('');
  if (s.rounds && s.rounds.length > 1) {
    L.push("Each round's ratios of medians to its own `node -e 0`:");
    L.push('');
    L.push(`| Round | prompt | --version |${s.base ? ' before: prompt | before: --version |' : ''}`);
    L.push(`|---|---|---|${s.base ? '---|---|' : ''}`);
    for (const [i, r] of s.rounds.entries())
      L.push(
        `| ${i + 1} | ${ratio(r.prompt)} | ${ratio(r.version)} |${s.base ? ` ${ratio(r.basePrompt)} | ${ratio(r.baseVersion)} |` : ''}`,
      );
    L.push('');
  }
}

function renderResolver(L: string[], r: ResolverResult): void {
  L.push('## 3. Symbol resolver');
  L.push('');
  L.push(
    `Live \`/proc/kallsyms\` (${fmtInt(r.lines)} lines). Read: ${fmtSpread(r.readMs, 1, ' ms')} (not part of the build figure).`,
  );
  L.push(
    `Index build (\`parseKallsyms\` on text already read): first build in each of ${r.buildFreshMs.n} fresh node processes ${fmtSpread(r.buildFreshMs, 1, ' ms')};`,
  );
  L.push(
    `first build in the bench process ${r.buildColdMs.toFixed(1)} ms; warm repeats ${fmtSpread(r.buildWarmMs, 1, ' ms')}.`,
  );
  L.push(
    `Lookups on ${r.distinct} distinct real addresses (one inside each of ${r.distinct} random text symbols), 2M lookups per sample, 5 samples:`,
  );
  L.push(
    `\`index.resolve\` ${fmtSpread({ ...r.lookupsPerSec, median: r.lookupsPerSec.median / 1e6, min: r.lookupsPerSec.min / 1e6, max: r.lookupsPerSec.max / 1e6 }, 2, ' M/s')};`,
  );
  L.push(
    `through \`cachedResolver\` (what the CLI uses) ${fmtSpread({ ...r.cachedLookupsPerSec, median: r.cachedLookupsPerSec.median / 1e6, min: r.cachedLookupsPerSec.min / 1e6, max: r.cachedLookupsPerSec.max / 1e6 }, 1, ' M/s')}.`,
  );
  L.push('');
  L.push(
    "Against dropwatch's method (`createRescanResolver`: re-read and rescan kallsyms on every range-cache miss) for the same",
  );
  L.push(`${r.distinct} distinct addresses, each of which misses:`);
  L.push('');
  L.push('| Method | Total for the distinct addresses | |');
  L.push('|---|---|---|');
  L.push(`| ours: read + build + ${r.distinct} lookups | ${r.oursTotalMs.toFixed(0)} ms | |`);
  L.push(
    `| dropwatch rescan (anchor) | ${(r.rescanTotalMs / 1000).toFixed(1)} s | ${r.rescanPerMissMs.toFixed(1)} ms per miss, ${r.rescanMeasured} measured |`,
  );
  L.push(
    `| ratio (rescan / ours) | ${r.ratio.toFixed(0)}× | results identical: ${r.mismatches === 0 ? 'yes' : `no (${r.mismatches} differ)`} |`,
  );
  L.push('');
  for (const n of r.notes) L.push(`- ${n}`);
  if (r.notes.length) L.push('');
}

/** "sender-limited in 1 of 3 rounds": where the reader outran the guest's sender, its figure is only a floor. */
function limitedRounds(n: NetdmResult, reader: string): string {
  const runs = n.runs.filter((r) => r.reader === reader);
  return `sender-limited in ${runs.filter((r) => r.senderLimited).length} of ${runs.length} rounds`;
}

function renderNetdm(L: string[], n: NetdmResult | undefined): void {
  L.push('## 4. NET_DM packet mode (qemu guest)');
  L.push('');
  if (!n || n.status !== 'measured') {
    L.push(`**Not measured**: ${n?.reason ?? 'not run in this invocation'}.`);
    L.push('');
    return;
  }
  L.push(n.method);
  L.push('');
  L.push(
    `Guest kernel ${n.kernel ?? '?'}; the sender alone (nothing monitoring) reached ${fmtInt(n.senderRate ?? NaN)} datagrams/s; the whole boot took ${(n.bootSeconds ?? NaN).toFixed(0)} s.`,
  );
  L.push('');
  L.push('| Reader | Sustained alerts/s, nothing lost | Ratio to anchor (same round) | CPU µs/alert (whole ramp) |');
  L.push('|---|---|---|---|');
  for (const s of n.summary) {
    L.push(
      `| ${NETDM_LABEL[s.reader]} | ${fmtSpread(s.rate, 0)}${s.lowerBound ? ` (${limitedRounds(n, s.reader)}: a lower bound there)` : ''} | ${s.reader === 'dwdump' ? '1 (anchor)' : fmtSpread(s.ratio, 2, '×')} | ${fmtSpread(s.cpuPerAlertUs, 0)} |`,
    );
  }
  L.push('');
  L.push(
    'Every run (rates are what the sender achieved; "not kept up at" is the slowest step that lost alerts or left the reader behind):',
  );
  L.push('');
  L.push(
    '| Round | Reader | Start-up s | Sustained/s | Not kept up at/s | Sent | Written | Lost on socket (kernel) | Tail dropped (kernel) | Balance | Notes |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of n.runs) {
    const lost = r.ownLost === null ? `${r.kernelSocketDrops}` : `${r.ownLost} (${r.kernelSocketDrops})`;
    const tail = r.ownTail === null ? `${r.kernelTailDrops}` : `${r.ownTail} (${r.kernelTailDrops})`;
    L.push(
      `| ${r.round + 1} | ${r.reader} | ${r.startupSeconds.toFixed(1)} | ${fmtInt(r.sustained)} | ${r.firstLossRate === null ? 'none' : fmtInt(r.firstLossRate)} | ${r.sent} | ${r.written} | ${lost} | ${tail} | ${r.balance >= 0 ? '+' : ''}${r.balance} | ${r.notes.join('; ')} |`,
    );
  }
  L.push('');
  L.push('<details><summary>Every step</summary>');
  L.push('');
  L.push(
    '| Round | Reader | Target/s | Achieved/s | Sent | Socket drops | Tail drops | Queue empty after, s | Kept up | CPU ticks |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of n.runs)
    for (const s of r.steps)
      L.push(
        `| ${r.round + 1} | ${r.reader} | ${fmtInt(s.target)} | ${fmtInt(s.achieved)} | ${s.sent} | ${s.socketDrops} | ${s.tailDrops} | ${s.lagSeconds?.toFixed(2) ?? ''} | ${s.keptUp === undefined ? '' : s.keptUp ? 'yes' : 'no'} | ${s.cpuTicks} |`,
      );
  L.push('');
  L.push('</details>');
  L.push('');
  for (const x of n.notes) L.push(`- ${x}`);
  if (n.notes.length) L.push('');
}
