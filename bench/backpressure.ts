// Output that cannot keep up (issue 15): peak memory, accounting and lateness of `-d` runs whose reader stalls, in
// summary and packet mode side by side. Run with `npm run bench -- backpressure [--rounds 3] [--count 300000]`.
import { provenance } from './lib/machine.js';
import { BenchNetns } from './lib/netns.js';
import { loadAverage } from './lib/proc.js';
import { runStalled, type Consumer, type StalledRun } from './lib/stalled.js';
import { fmtInt, fmtSpread, spread } from './lib/stats.js';

const FILTER = ['--filter', 'reason == NO_SOCKET'];
const SCENARIOS: { label: string; args: string[]; consumer: Consumer }[] = [
  { label: 'summary mode, text, reader stalled', args: [...FILTER], consumer: 'stalled pipe' },
  { label: 'packet mode, text, reader stalled', args: ['-m', 'packet', ...FILTER], consumer: 'stalled pipe' },
  {
    label: 'packet mode, JSON, reader stalled',
    args: ['-m', 'packet', '-f', 'json', ...FILTER],
    consumer: 'stalled pipe',
  },
  { label: 'packet mode, JSON, into a file', args: ['-m', 'packet', '-f', 'json', ...FILTER], consumer: 'file' },
];

export interface BackpressureResult {
  count: number;
  durationS: number;
  rounds: number;
  runs: { label: string; results: StalledRun[] }[];
  machine: string;
  load: number[];
  date: string;
  git: string;
}

export async function runBackpressure(opts: {
  rounds: number;
  count: number;
  log: (l: string) => void;
}): Promise<BackpressureResult> {
  const ns = new BenchNetns();
  const durationS = 10;
  const load = [loadAverage()];
  const runs = SCENARIOS.map((s) => ({ label: s.label, results: [] as StalledRun[] }));
  try {
    // Rounds interleave the scenarios, so a change in the machine's load falls on all of them alike.
    for (let r = 0; r < opts.rounds; r++)
      for (const [i, s] of SCENARIOS.entries()) {
        const o = await runStalled({ ns, args: s.args, consumer: s.consumer, count: opts.count, durationS });
        runs[i]!.results.push({ ...o, stderr: '' });
        opts.log(
          `  ${s.label}: peak ${(o.peakKiB / 1024).toFixed(1)} MiB, printed ${o.printed}, lost ${o.lostOutput} + ${o.lostElsewhere}, ended ${o.runMs - durationS * 1000} ms after -d`,
        );
        load.push(loadAverage());
      }
  } finally {
    ns.delete();
  }
  const { machine, date, git } = provenance();
  return {
    count: opts.count,
    durationS,
    rounds: opts.rounds,
    runs,
    machine,
    load,
    date,
    git,
  };
}

export function renderBackpressure(r: BackpressureResult): string {
  const L: string[] = [];
  L.push('## 7. Output that cannot keep up: memory and accounting');
  L.push('');
  L.push(
    `\`npm run bench -- backpressure --rounds ${r.rounds} --count ${r.count}\` on ${r.date} (commit ${r.git}; ${r.machine}): ` +
      `\`dropwatch -s -d ${r.durationS}\` on tracefs while one sender makes ${fmtInt(r.count)} drops as fast as it can. ` +
      `"Reader stalled": stdout is a pipe whose reader sleeps until after the run, then reads what the pipe holds. ` +
      `Median (min–max) over ${r.rounds} rounds, scenarios interleaved.`,
  );
  L.push('');
  L.push(
    '| scenario | peak RSS | printed | lost: output behind | lost: elsewhere | printed + lost − sent | ended after -d |',
  );
  L.push('|---|---|---|---|---|---|---|');
  for (const { label, results } of r.runs) {
    const s = (f: (o: StalledRun) => number, d = 0, unit = '') => fmtSpread(spread(results.map(f)), d, unit);
    L.push(
      `| ${label} | ${s((o) => o.peakKiB / 1024, 1, ' MiB')} | ${s((o) => o.printed)} | ${s((o) => o.lostOutput)} | ` +
        `${s((o) => o.lostElsewhere)} | ${s((o) => o.printed + o.lostOutput + o.lostElsewhere - o.sent)} | ` +
        `${s((o) => o.runMs - r.durationS * 1000, 0, ' ms')} |`,
    );
  }
  L.push('');
  L.push(`Load average during the runs: ${Math.min(...r.load).toFixed(1)}–${Math.max(...r.load).toFixed(1)}.`);
  return L.join('\n');
}
