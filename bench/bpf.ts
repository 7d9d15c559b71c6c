// The bpf source under a drop storm (issue 20): the same 1,000,000 drops with no monitor, under our dropwatch on bpf
// (summary mode, and packet mode into a pipe we read and into a file), on tracefs, under bpftrace counting by location
// and reason, and under perf record, rounds interleaved. Summary counts are read from JSON places, so the drops in our
// namespace are counted exactly whatever other processes drop meanwhile.
// Run with `npm run bench -- bpf [--rounds 3] [--count 1000000]`.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provenance } from './lib/machine.js';
import { measureFlood, MonitorProcess } from './lib/monitor.js';
import { BenchNetns } from './lib/netns.js';
import { cpuMicros, loadAverage, peakRssKiB, which } from './lib/proc.js';
import { dropwatchBin } from './lib/root.js';
import { sendDrops, type SendResult } from './lib/sender.js';
import { fmtInt, fmtSpread, sleep, spread } from './lib/stats.js';

const CONFIGS = {
  none: 'no monitor (anchor)',
  bpf: 'dropwatch -b bpf -f json (summary)',
  bpf_by_location: 'dropwatch -b bpf --by location (text)',
  bpf_by_container: 'dropwatch -b bpf --by container (text)',
  tracefs: 'dropwatch -b tracefs (summary)',
  bpftrace: 'bpftrace @[args->location, args->reason] = count()',
  perf: 'perf record -e skb:kfree_skb -a -o /dev/null',
  bpf_packet: 'dropwatch -b bpf -m packet (text)',
  bpf_packet_file: 'dropwatch -b bpf -m packet (text, into a file)',
} as const;
type Config = keyof typeof CONFIGS;

interface Run {
  config: Config;
  send: SendResult;
  ratio: number;
  cpuPerDropUs: number | null;
  rssMiB: number | null;
  /** Our drops as the monitor reported them (summary: in our namespace; packet: flow lines to our port). */
  counted: number | null;
  /** Lost lines: before dropwatch, and not printed because the reader fell behind. */
  lost: number;
}

export interface BpfBenchResult {
  count: number;
  rounds: number;
  runs: Run[];
  machine: string;
  load: number[];
  date: string;
  git: string;
}

/** Tallies one line of dropwatch's output: our drops and every Lost line. */
type Tally = (line: string, t: { counted: number; lost: number }) => void;

const lostLine: Tally = (line, t) => {
  const m = /^Lost (\d+) drop events/.exec(line);
  if (m) t.lost += Number(m[1]);
};

/** Runs dropwatch over one flood; its output goes to us through a pipe, or into a file read after it exits. */
async function underDropwatch(
  ns: BenchNetns,
  count: number,
  args: string[],
  tally: Tally,
  into: 'pipe' | 'file' = 'pipe',
) {
  const dir = into === 'file' ? mkdtempSync(join(tmpdir(), 'dw-bpf-bench-')) : null;
  const path = dir === null ? null : join(dir, 'out');
  const fd = path === null ? null : openSync(path, 'w');
  const child = spawn(process.execPath, [dropwatchBin, ...args], { stdio: ['ignore', fd ?? 'pipe', 'pipe'] });
  if (fd !== null) closeSync(fd);
  const t = { counted: 0, lost: 0 };
  let err = '';
  let carry = '';
  const feed = (text: string) => {
    const lines = (carry + text).split('\n');
    carry = lines.pop()!;
    for (const line of lines) tally(line, t);
  };
  child.stdout?.on('data', (d: Buffer) => feed(d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const line of d.toString().split('\n')) lostLine(line, t);
  });
  try {
    while (!err.includes('Kernel monitoring activated.')) {
      if (child.exitCode !== null) throw new Error(`dropwatch ${args.join(' ')}: ${err.trim()}`);
      await sleep(20);
    }
    const pid = child.pid!;
    const cpu0 = cpuMicros(pid) ?? 0;
    const send = await sendDrops(ns, count);
    await sleep(1500);
    const cpu1 = cpuMicros(pid) ?? cpu0;
    const rss = peakRssKiB(pid);
    child.kill('SIGINT');
    await new Promise((r) => child.on('close', r));
    if (path !== null) feed(readFileSync(path, 'utf8'));
    feed('\n');
    return { send, cpuUs: cpu1 - cpu0, rss, ...t };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

async function underPerf(ns: BenchNetns, count: number) {
  const m = new MonitorProcess('perf', ['record', '-q', '-e', 'skb:kfree_skb', '-a', '-o', '/dev/null']);
  await sleep(300);
  return { ...(await measureFlood(m, () => sendDrops(ns, count))), counted: null, lost: 0 };
}

const BPFTRACE_PROGRAM = 'tracepoint:skb:kfree_skb { @[args->location, args->reason] = count(); }';

/** bpftrace prints its map at exit; our drops are its busiest entry (other processes' drops land elsewhere). */
async function underBpftrace(ns: BenchNetns, count: number) {
  const m = new MonitorProcess('bpftrace', ['-e', BPFTRACE_PROGRAM]);
  const attached = await m.waitFor(() => /Attaching \d+ probe/.test(m.stdout), 60000);
  if (!attached || !m.running) {
    await m.interrupt(3000);
    throw new Error(`bpftrace could not attach: ${(m.stderr || m.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const measured = await measureFlood(m, () => sendDrops(ns, count));
  let counted = 0;
  for (const mm of m.stdout.matchAll(/^@\[[^\]]*\]: (\d+)$/gm)) counted = Math.max(counted, Number(mm[1]));
  return { ...measured, counted, lost: 0 };
}

async function runOne(config: Config, ns: BenchNetns, inode: number, count: number) {
  if (config === 'perf') return underPerf(ns, count);
  if (config === 'bpftrace') return underBpftrace(ns, count);
  if (config === 'bpf')
    return underDropwatch(ns, count, ['-b', 'bpf', '-s', '-f', 'json'], (line, t) => {
      if (!line.startsWith('{')) return;
      const e = JSON.parse(line) as { type: string; lost?: number; symbol?: string; reason?: string; places?: [] };
      if (e.type === 'lost') t.lost += e.lost!;
      if (e.type !== 'summary' || e.symbol !== '__udp4_lib_rcv' || e.reason !== 'NO_SOCKET') return;
      for (const p of e.places as { netns: number; count: number }[]) if (p.netns === inode) t.counted += p.count;
    });
  if (config === 'bpf_by_location')
    return underDropwatch(ns, count, ['-b', 'bpf', '-s', '-l', 'kas'], (line, t) => {
      const m = /^(\d+) drops at __udp4_lib_rcv\+\w+ \(0x[0-9a-f]+\) \[software\] NO_SOCKET$/.exec(line);
      if (m) t.counted += Number(m[1]);
      lostLine(line, t);
    });
  // Our namespace is an ip netns one, so its lines read `N drops · netns NAME (INODE)` once named, `netns INODE` before.
  if (config === 'bpf_by_container')
    return underDropwatch(ns, count, ['-b', 'bpf', '-s', '--by', 'container'], (line, t) => {
      const m = /^(\d+) drops · netns (?:\S+ \()?(\d+)\)?$/.exec(line);
      if (m && Number(m[2]) === inode) t.counted += Number(m[1]);
      lostLine(line, t);
    });
  if (config === 'tracefs')
    return underDropwatch(ns, count, ['-b', 'tracefs', '-s', '-l', 'kas'], (line, t) => {
      const m = /^(\d+) drops at __udp4_lib_rcv\+\w+ \(0x[0-9a-f]+\) \[software\] NO_SOCKET$/.exec(line);
      if (m) t.counted += Number(m[1]);
      lostLine(line, t);
    });
  const ourFlows: Tally = (line, t) => {
    if (line.startsWith('flow: IP 127.0.0.1.') && line.endsWith('> 127.0.0.1.9: UDP, length 1')) t.counted++;
    lostLine(line, t);
  };
  const packet = ['-b', 'bpf', '-s', '-m', 'packet'];
  return underDropwatch(ns, count, packet, ourFlows, config === 'bpf_packet_file' ? 'file' : 'pipe');
}

export async function runBpfBench(opts: { rounds: number; count: number; log: (l: string) => void }) {
  const ns = new BenchNetns();
  const inode = statSync(`/run/netns/${ns.name}`).ino;
  const tools: Partial<Record<Config, string>> = { perf: 'perf', bpftrace: 'bpftrace' };
  const configs = (Object.keys(CONFIGS) as Config[]).filter((c) => tools[c] === undefined || which(tools[c]) !== null);
  const runs: Run[] = [];
  const load = [loadAverage()];
  try {
    for (let round = 0; round < opts.rounds; round++) {
      let anchor = 0;
      for (const config of configs) {
        const o =
          config === 'none' ? { send: await sendDrops(ns, opts.count) } : await runOne(config, ns, inode, opts.count);
        if (config === 'none') anchor = o.send.rate;
        const m = o as Partial<Awaited<ReturnType<typeof underDropwatch>>>;
        const run: Run = {
          config,
          send: o.send,
          ratio: o.send.rate / anchor,
          cpuPerDropUs: m.cpuUs === undefined ? null : m.cpuUs / o.send.sent,
          rssMiB: m.rss == null ? null : m.rss / 1024,
          counted: m.counted ?? null,
          lost: m.lost ?? 0,
        };
        runs.push(run);
        opts.log(`  ${CONFIGS[config]}: ${JSON.stringify({ ...run, send: undefined, rate: Math.round(o.send.rate) })}`);
        load.push(loadAverage());
      }
    }
  } finally {
    ns.delete();
  }
  const { machine, date, git } = provenance();
  return {
    count: opts.count,
    rounds: opts.rounds,
    runs,
    machine,
    load,
    date,
    git,
  } satisfies BpfBenchResult;
}

export function renderBpfBench(r: BpfBenchResult): string {
  const L: string[] = [];
  L.push('## 9. The bpf source under a drop storm');
  L.push('');
  L.push(
    `\`npm run bench -- bpf --rounds ${r.rounds} --count ${r.count}\` on ${r.date} (commit ${r.git}; ${r.machine}): ` +
      `${fmtInt(r.count)} drops to a closed UDP port in our namespace, sent as fast as one sender can, with each ` +
      `monitor in turn; rounds interleave the monitors. "Counted": summary modes, our drops at __udp4_lib_rcv ` +
      `NO_SOCKET (bpf JSON and --by container: in our namespace; tracefs and --by location: every namespace); packet mode, flow lines to ` +
      `our port (other processes' identical floods add); bpftrace, its busiest map entry (every namespace). "Lost": every Lost line, ours or not. Median (min–max).`,
  );
  L.push('');
  L.push('| monitor | sender rate | vs none | CPU per drop | peak RSS | counted | lost |');
  L.push('|---|---|---|---|---|---|---|');
  for (const config of Object.keys(CONFIGS) as Config[]) {
    const runs = r.runs.filter((x) => x.config === config);
    if (runs.length === 0) continue;
    const s = (f: (x: Run) => number | null, d = 0, unit = '') => {
      const xs = runs.map(f).filter((x): x is number => x !== null);
      return xs.length === 0 ? '—' : fmtSpread(spread(xs), d, unit);
    };
    L.push(
      `| ${CONFIGS[config]} | ${s((x) => x.send.rate)}/s | ${s((x) => x.ratio, 2)} | ${s((x) => x.cpuPerDropUs, 2, ' µs')} | ` +
        `${s((x) => x.rssMiB, 1, ' MiB')} | ${s((x) => x.counted)} | ${s((x) => x.lost)} |`,
    );
  }
  L.push('');
  L.push(`Load average during the runs: ${Math.min(...r.load).toFixed(1)}–${Math.max(...r.load).toFixed(1)}.`);
  return L.join('\n');
}
