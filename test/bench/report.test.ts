// The report's layout: each section's analysis (bench/analysis/KEY.md) under its figures; the storm's base rows by ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { analysisPath, renderReport, type BenchRun, type SectionKey } from '../../bench/report.js';
import { accounting, withBaseTwins, type StormSample } from '../../bench/storm.js';
import { renderCompare } from '../../bench/compare.js';

const one = (x: number) => ({ median: x, min: x, max: x, n: 1 });

const sample = (config: 'none' | 'dropwatch', rate: number): StormSample => ({
  config,
  round: 0,
  sent: 1000,
  seconds: 1000 / rate,
  rate,
  ratio: rate / 1000,
  load: 0.1,
  notes: [],
  ...(config === 'dropwatch'
    ? { cpuPerDropUs: 0.1, peakRssKiB: 70 * 1024, counts: { ours: 1000, foreign: 0, unlisted: 0, lost: 0, lines: 1 } }
    : {}),
});

function benchRun(mode: 'full' | 'quick'): BenchRun {
  return {
    machine: {
      nproc: 2,
      model: 'test CPU',
      kernel: '6.1',
      node: 'v20',
      memGiB: 1,
      date: '2026-01-01T00:00:00Z',
      git: 'not a git checkout',
      tools: {},
    },
    mode,
    command: 'npm run bench',
    loadBefore: 0,
    loadAfter: 0,
    storm: {
      count: 1000,
      rounds: 1,
      samples: [sample('none', 1000), sample('dropwatch', 950)],
      skipped: {},
      installNotes: [],
    },
    startup: { tool: 'loop', runs: 1, dropwatch: one(150), node: one(50), floor: one(100), ratio: 3, notes: ['test'] },
    resolver: {
      lines: 10,
      readMs: one(1),
      buildColdMs: 1,
      buildFreshMs: one(1),
      buildWarmMs: one(1),
      lookupsPerSec: one(1e7),
      cachedLookupsPerSec: one(2e7),
      distinct: 10,
      oursTotalMs: 1,
      rescanTotalMs: 100,
      rescanMeasured: 10,
      rescanPerMissMs: 10,
      ratio: 100,
      mismatches: 0,
      notes: [],
    },
    netdm: {
      status: 'not-measured',
      reason: 'no guest',
      method: '',
      runs: [],
      summary: [],
      dwdumpRate: 0,
      oursRate: 0,
      notes: [],
    },
  };
}

/** The text of the `## ` section whose heading starts with `prefix`, up to the next `## ` heading. */
function section(md: string, prefix: string): string {
  const parts = md.split(/^(?=## )/m);
  const found = parts.find((p) => p.startsWith(`## ${prefix}`));
  assert.ok(found, `no section ${prefix}`);
  return found;
}

const MAIN: [SectionKey, string][] = [
  ['storm', '1. tracefs drop storm'],
  ['startup', '2. Startup'],
  ['resolver', '3. Symbol resolver'],
];

test('a full run carries the analysis of each measured section under its figures', () => {
  const md = renderReport(benchRun('full'));
  for (const [key, heading] of MAIN) {
    if (!existsSync(analysisPath(key))) continue;
    assert.match(section(md, heading), /\n### Analysis\n\n\S/, `${key}: analysis under its section`);
  }
  // NET_DM was not measured: an analysis of figures that are not there would mislead.
  assert.doesNotMatch(section(md, '4. NET_DM'), /### Analysis/);
  assert.doesNotMatch(md, /^## Analysis/m);
});

test('a quick run shows its figures without the analyses written for a full run', () => {
  const md = renderReport(benchRun('quick'));
  for (const [, heading] of MAIN) assert.doesNotMatch(section(md, heading), /### Analysis/);
});

test('the sections run on their own come each with their analysis', () => {
  const md = renderReport(benchRun('quick'));
  for (const [key, heading] of [
    ['soak', '5. Soak'],
    ['top', '6. Live view'],
    ['backpressure', '7. Output'],
    ['compare', '8. This tree'],
    ['stacklock', '10. Call chains'],
  ] as const) {
    if (!md.includes(`## ${heading}`) || !existsSync(analysisPath(key))) continue;
    assert.match(section(md, heading), /\n### Analysis\n\n\S/, `${key}: analysis under its section`);
  }
});

test('with --base, the base build runs beside ours in the same rounds and the storm section compares the two', () => {
  assert.deepEqual(withBaseTwins(['none', 'dropwatch', 'dropwatch_stack', 'trace_pipe']), [
    'none',
    'dropwatch',
    'dropwatch_base',
    'dropwatch_stack',
    'dropwatch_stack_base',
    'trace_pipe',
  ]);
  assert.throws(() => withBaseTwins(['none', 'perf']), /select dropwatch/);

  const run = benchRun('quick');
  const base: StormSample = {
    ...sample('dropwatch', 900),
    config: 'dropwatch_base',
    cpuPerDropUs: 0.2,
    counts: { ours: 990, foreign: 0, unlisted: 0, lost: 10, lines: 1 },
  };
  run.storm = { ...run.storm!, samples: [...run.storm!.samples, base], base: { rev: 'main~1', commit: 'abc1234' } };
  const storm = section(renderReport(run), '1. tracefs drop storm');
  assert.match(storm, /\| base build abc1234: dropwatch -l kas \(tracefs\) \| 900 \| 90\.0% \| 0\.200 \| 70\.0 \|/);
  assert.match(
    storm,
    /dropwatch, this tree against base main~1 \(abc1234\), medians of 1 rounds: sender rate 95\.0% vs 90\.0% of no-monitor \(this\/base 1\.056×\); CPU 0\.100 vs 0\.200 µs\/drop \(this\/base 0\.500×\)/,
  );
  assert.match(storm, /dropwatch_base round 1: sent 1000, counted 990, lost 10/);
  // The base build's losses are shown, but the targets are this tree's.
  const acc = accounting(run.storm);
  assert.ok(acc.exact && acc.lossless);

  // The same figures as a section of their own (`npm run bench -- compare`).
  const own = renderCompare({
    date: '2026-01-01T00:00:00Z',
    git: 'commit def5678',
    machine: '2 × test CPU',
    command: 'npm run bench -- compare --base main~1',
    load: [0.1, 0.2],
    storm: run.storm,
  });
  assert.match(own, /^## 8\. This tree against its base build/);
  assert.match(own, /built from main~1 \(abc1234\)/);
  assert.match(own, /\| base build abc1234: dropwatch -l kas \(tracefs\) \| 900 \|/);
  assert.match(own, /dropwatch, this tree against base main~1 \(abc1234\)/);
});
