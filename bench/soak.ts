// Soak (issue 7): the CLI on tracefs under a steady ~100k drops/s for minutes; counts must stay exact and RSS flat.
// Run with `npm run bench -- soak [--minutes 10] [--rate 100000]`; never part of the default run.
import { countDropwatchOutput, reapInstance } from './lib/dropwatch-output.js';
import { describeMachine } from './lib/machine.js';
import { MonitorProcess } from './lib/monitor.js';
import { BenchNetns } from './lib/netns.js';
import { cpuMicros, loadAverage, rssKiB } from './lib/proc.js';
import { dropwatchBin } from './lib/root.js';
import { sendDrops } from './lib/sender.js';

export interface SoakResult {
  minutes: number;
  rate: number;
  sent: number;
  achievedRate: number;
  counted: number;
  lost: number;
  unlisted: number;
  foreign: number;
  /** [seconds since start, VmRSS MiB]. */
  rss: [number, number][];
  peakRssMiB: number;
  cpuPerDropUs: number;
  loadAvg: number[];
  notes: string[];
  /** When and on what code it ran (the soak is rendered on its own, then included in BENCHMARKS.md). */
  date?: string;
  git?: string;
}

export async function runSoak(opts: { minutes: number; rate: number; log: (l: string) => void }): Promise<SoakResult> {
  const ns = new BenchNetns();
  const notes: string[] = [];
  const m = new MonitorProcess(process.execPath, [dropwatchBin, '-l', 'kas'], { stdin: 'pipe' });
  try {
    m.child.stdin!.write('start\n');
    if (!(await m.waitFor(() => m.stdout.includes('Kernel monitoring activated.'), 30000)))
      throw new Error(`dropwatch did not start: ${m.stderr.trim()}`);
    const cpu0 = await m.settle();
    const rss: [number, number][] = [];
    const loads: number[] = [];
    const t0 = Date.now();
    const sample = () => {
      const kib = rssKiB(m.pid);
      if (kib !== null) rss.push([Math.round((Date.now() - t0) / 1000), kib / 1024]);
      loads.push(loadAverage());
      const c = countDropwatchOutput(m.stdout, m.stderr);
      opts.log(`  ${rss.at(-1)?.[0] ?? 0}s rss ${((kib ?? 0) / 1024) | 0} MiB, counted ${c.ours}, lost ${c.lost}`);
    };
    sample();
    const timer = setInterval(sample, 10_000);
    const count = Math.round(opts.minutes * 60 * opts.rate);
    const s = await sendDrops(ns, count, opts.rate);
    clearInterval(timer);
    sample();
    await new Promise((r) => setTimeout(r, 2500));
    const cpu1 = cpuMicros(m.pid) ?? cpu0;
    const peak = m.peakRss() ?? 0;
    const pid = m.pid;
    const stopping = m.interrupt();
    m.child.stdin!.end();
    await stopping;
    if (reapInstance(`dropwatch-${pid}`)) notes.push('dropwatch left its tracefs instance behind (removed)');
    const c = countDropwatchOutput(m.stdout, m.stderr);
    return {
      minutes: opts.minutes,
      rate: opts.rate,
      sent: s.sent,
      achievedRate: s.rate,
      counted: c.ours,
      lost: c.lost,
      unlisted: c.unlisted,
      foreign: c.foreign,
      rss,
      peakRssMiB: peak / 1024,
      cpuPerDropUs: (cpu1 - cpu0) / s.sent,
      loadAvg: loads,
      notes,
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      git: describeMachine().git,
    };
  } finally {
    if (m.running) {
      m.child.stdin!.end();
      await m.interrupt(5000);
    }
    ns.delete();
  }
}

/** Markdown for bench/soak.md, which BENCHMARKS.md includes as its soak section. */
export function renderSoak(r: SoakResult): string {
  const L: string[] = [];
  const rs = r.rss.map(([, v]) => v);
  const first = rs.slice(1, 4);
  const last = rs.slice(-3);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  // After the first minute (start-up and the first GC cycles), the spread of the samples is the flatness figure.
  const steady = r.rss.filter(([t]) => t >= 60).map(([, v]) => v);
  const excess = r.counted + r.lost + r.unlisted - r.sent;
  L.push(`## 5. Soak: ${r.minutes} min at ${r.rate.toLocaleString('en-US')} drops/s (tracefs)`);
  L.push('');
  L.push(
    `\`npm run bench -- soak --minutes ${r.minutes} --rate ${r.rate}\`${r.date ? ` on ${r.date}` : ''}${r.git ? ` (${r.git})` : ''}: ` +
      'our dropwatch -l kas monitoring while one sender makes paced drops in a private network namespace; VmRSS ' +
      'sampled every 10 s. Not part of the default run; written to bench/soak.md and included here.',
  );
  L.push('');
  L.push(
    `- sent ${fmt(r.sent)} (achieved ${fmt(Math.round(r.achievedRate))}/s); counted ${fmt(r.counted)}; lost ${r.lost}; unlisted ${r.unlisted};`,
  );
  L.push(`  counted+lost−sent ${excess >= 0 ? '+' : ''}${fmt(excess)}; other drops seen ${fmt(r.foreign)}`);
  L.push(
    `- every drop counted: ${excess >= 0 && r.lost === 0 && r.unlisted === 0 ? 'yes, lost 0' : 'NO'}` +
      (excess > 0 ? ' (the excess is drops at the same place by other processes: the tracepoint is global)' : ''),
  );
  L.push(`- CPU ${r.cpuPerDropUs.toFixed(3)} µs/drop; peak RSS ${r.peakRssMiB.toFixed(1)} MiB`);
  L.push(
    `- RSS early (samples 2–4) ${avg(first).toFixed(1)} MiB → late (last 3) ${avg(last).toFixed(1)} MiB; after the first minute ` +
      `${Math.min(...steady).toFixed(1)}–${Math.max(...steady).toFixed(1)} MiB`,
  );
  L.push(`- RSS every 10 s (MiB): ${r.rss.map(([t, v]) => `${t}s ${v.toFixed(1)}`).join(', ')}`);
  L.push(`- load average during the run: ${Math.min(...r.loadAvg).toFixed(1)}–${Math.max(...r.loadAvg).toFixed(1)}`);
  for (const n of r.notes) L.push(`- ${n}`);
  return L.join('\n');
}

const fmt = (n: number) => n.toLocaleString('en-US');
