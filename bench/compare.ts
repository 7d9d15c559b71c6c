// `npm run bench -- compare --base REV`: the storm with our CLI built from REV beside this tree's, as its own section.
import { describeMachine } from './lib/machine.js';
import { loadAverage } from './lib/proc.js';
import { fmtInt } from './lib/stats.js';
import { renderStormFigures } from './report.js';
import { baseName, runStorm, type SelectableConfig, type StormResult } from './storm.js';

export interface CompareResult {
  date: string;
  git: string;
  machine: string;
  command: string;
  load: [number, number];
  storm: StormResult;
}

export interface CompareOptions {
  base: string;
  count: number;
  rounds: number;
  configs: SelectableConfig[];
  command: string;
  log: (line: string) => void;
}

export async function runCompare(o: CompareOptions): Promise<CompareResult> {
  const load0 = loadAverage();
  const m = describeMachine();
  const storm = await runStorm({ count: o.count, rounds: o.rounds, configs: o.configs, base: o.base, log: o.log });
  return {
    date: m.date,
    git: m.git,
    machine: `${m.nproc} × ${m.model}, kernel ${m.kernel}, node ${m.node}`,
    command: o.command,
    load: [load0, loadAverage()],
    storm,
  };
}

export function renderCompare(r: CompareResult): string {
  const L: string[] = [];
  const s = r.storm;
  L.push('## 8. This tree against its base build (tracefs storm)');
  L.push('');
  L.push(
    `\`${r.command}\` on ${r.date} (${r.git}; ${r.machine}; load ${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)}). Not part of the default run; written to bench/compare.md and included here.`,
  );
  L.push('');
  L.push(
    `The storm of section 1, ${fmtInt(s.count)} drops per run and ${s.rounds} rounds, with our CLI built from ${s.base ? baseName(s.base) : '(no base)'} run exactly as this tree's in the same rounds, every configuration once per round in an order rotated per round; every sender rate is divided by the same round's unmonitored rate. CPU is the monitor's utime+stime per drop (10 ms ticks) from ready to caught up; RSS is its VmHWM.`,
  );
  L.push('');
  renderStormFigures(L, s);
  return L.join('\n').trimEnd();
}
