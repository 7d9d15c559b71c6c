// Benchmark 4: NET_DM packet mode in the qemu guest (Debian 6.1 + drop_monitor under TCG), in one boot: Debian's
// `dwdump -w /dev/null` (the anchor), our `dwdump -w /dev/null` and our `dropwatch` in packet mode with its output to
// /dev/null, interleaved and repeated. bench/guest/netdm_ramp.py does the measuring inside the guest; this file boots
// it, checks every run's accounting and turns it into figures.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { guestUnavailable, runInGuest } from '../test/qemu/harness.js';
import { projectRoot } from './lib/root.js';
import { spread, type Spread } from './lib/stats.js';

export const NETDM_READERS = ['dwdump', 'ours-dwdump', 'ours-dropwatch'] as const;
export type NetdmReader = (typeof NETDM_READERS)[number];

export const NETDM_LABEL: Record<NetdmReader, string> = {
  dwdump: "Debian's dwdump -w /dev/null (anchor)",
  'ours-dwdump': 'our dwdump -w /dev/null',
  'ours-dropwatch': 'our dropwatch -l kas, set alertmode packet, stdout to a tmpfs file',
};

export interface NetdmStep {
  target: number;
  sent: number;
  seconds: number;
  achieved: number;
  socketDrops: number;
  tailDrops: number;
  cpuTicks: number;
  drained: boolean;
  /** Seconds until the reader's receive queue was empty after the step's last datagram. */
  lagSeconds?: number;
  /** Nothing lost and the reader's receive queue empty within 10% of the step's length after it. */
  keptUp?: boolean;
}

/** One reader's ramp in one round, with its accounting. */
export interface NetdmRun {
  reader: NetdmReader;
  round: number;
  startupSeconds: number;
  steps: NetdmStep[];
  /** Achieved rate of the fastest step that lost nothing (NaN if even the first lost something). */
  sustained: number;
  /** True when the ramp ended because the sender could not go faster, not because of a loss: a lower bound. */
  senderLimited: boolean;
  /** Slowest step (achieved rate) that lost something or left the reader behind, if any. */
  firstLossRate: number | null;
  sent: number;
  /** The kernel's counts for this reader: sk_drops of its sockets and the NET_DM tail-drop delta. */
  kernelSocketDrops: number;
  kernelTailDrops: number;
  /** The reader's own accounting (Debian's dwdump keeps none: its write(2) count stands in for "written"). */
  written: number;
  ownLost: number | null;
  ownTail: number | null;
  /** written + lost on socket + tail dropped − sent: 0 when every alert is accounted for. */
  balance: number;
  exact: boolean;
  /** Monitor CPU per alert over the whole ramp, µs (guest clock ticks, 10 ms resolution). */
  cpuPerAlertUs: number;
  notes: string[];
}

export interface NetdmResult {
  status: 'measured' | 'not-measured';
  reason?: string;
  anchor?: string;
  method: string;
  kernel?: string;
  senderRate?: number;
  bootSeconds?: number;
  runs: NetdmRun[];
  /** Per reader: sustained rate over the rounds, and the ratio to the anchor of the same round. */
  summary: { reader: NetdmReader; rate: Spread; ratio: Spread; lowerBound: boolean; cpuPerAlertUs: Spread }[];
  /** Kept for reports rendered from older JSON. */
  dwdumpRate: number;
  oursRate: number;
  notes: string[];
}

export interface GuestRun {
  kind: 'run';
  reader: NetdmReader;
  round: number;
  startupSeconds: number;
  steps: NetdmStep[];
  sent: number;
  socketDrops: number;
  tailDrops: number;
  writes: number;
  writesPerAlert: number;
  stderrDuring: number;
  /** Our dropwatch: alert blocks in its stdout file. */
  printed: number | null;
  cpuTicks: number;
  exitCode: number;
  stderrAfterStop: string;
  stderr: string;
}

const DWDUMP_SUMMARY = /dwdump: (\d+) packets? written, (\d+) lost on our socket, (\d+) tail-dropped by the kernel/;
const DROPWATCH_LOST_TOTAL = /^In total, (\d+) drop events were lost before they reached dropwatch/gm;

export function analyseRun(g: GuestRun): NetdmRun {
  const notes: string[] = [];
  // Steps are not monotonic once the ramp bisects, and the guest's clock is noisy: the figure is the fastest step kept
  // up with that is slower than every step that was not.
  const kept = (x: NetdmStep) => x.keptUp ?? (x.socketDrops === 0 && x.tailDrops === 0);
  const failed = g.steps.filter((x) => !kept(x)).map((x) => x.achieved);
  const firstLossRate = failed.length ? Math.min(...failed) : null;
  const below = g.steps.filter((x) => kept(x) && (firstLossRate === null || x.achieved < firstLossRate));
  const sustained = below.length ? Math.max(...below.map((x) => x.achieved)) : NaN;
  const last = g.steps.at(-1);
  const senderLimited = firstLossRate === null;
  if (last && !last.drained) notes.push('the last step did not drain within 20 s');

  let written: number;
  let ownLost: number | null = null;
  let ownTail: number | null = null;
  if (g.reader === 'ours-dwdump') {
    const m = DWDUMP_SUMMARY.exec(g.stderr);
    if (m) {
      written = Number(m[1]);
      ownLost = Number(m[2]);
      ownTail = Number(m[3]);
    } else {
      written = NaN;
      notes.push('no summary line from our dwdump');
    }
  } else if (g.reader === 'ours-dropwatch') {
    written = g.printed ?? NaN;
    // At the stop it prints each place's total ("In total, N ..."): that is its own count.
    let lost = 0;
    for (const m of g.stderrAfterStop.matchAll(DROPWATCH_LOST_TOTAL)) lost += Number(m[1]);
    ownLost = lost;
  } else {
    // Debian's dwdump reports nothing; its output is /dev/null, so what it wrote is counted as write(2) calls
    // (/proc/<pid>/io syscw): one per pcap record, since it fflush()es each, calibrated by one alert before the ramp.
    const w = g.writes - g.stderrDuring;
    written = g.writesPerAlert > 0 ? w / g.writesPerAlert : NaN;
    if (!Number.isInteger(written)) notes.push(`write count ${w} is not a multiple of ${g.writesPerAlert} per alert`);
  }
  const lost = ownLost ?? g.socketDrops;
  const tail = ownTail ?? g.tailDrops;
  const balance = written + lost + tail - g.sent;
  if (ownLost !== null && ownLost !== g.socketDrops)
    notes.push(`its lost count ${ownLost} differs from the kernel's sk_drops ${g.socketDrops}`);
  if (ownTail !== null && ownTail !== g.tailDrops)
    notes.push(`its tail count ${ownTail} differs from the kernel's ${g.tailDrops}`);
  if (g.exitCode !== 0) notes.push(`exit ${g.exitCode}`);
  // Jiffies in the guest: CONFIG_HZ=250 on Debian, but /proc/<pid>/stat is in USER_HZ (100).
  const cpuPerAlertUs = (g.cpuTicks * 1e4) / Math.max(1, g.sent);
  return {
    reader: g.reader,
    round: g.round,
    startupSeconds: g.startupSeconds,
    steps: g.steps,
    sustained,
    senderLimited,
    firstLossRate,
    sent: g.sent,
    kernelSocketDrops: g.socketDrops,
    kernelTailDrops: g.tailDrops,
    written,
    ownLost,
    ownTail,
    balance,
    exact: balance === 0,
    cpuPerAlertUs,
    notes,
  };
}

export function summarizeNetdm(runs: NetdmRun[]): NetdmResult['summary'] {
  const out: NetdmResult['summary'] = [];
  for (const reader of NETDM_READERS) {
    const mine = runs.filter((r) => r.reader === reader);
    if (mine.length === 0) continue;
    const ratios = mine.map((r) => {
      const anchor = runs.find((a) => a.reader === 'dwdump' && a.round === r.round);
      return anchor ? r.sustained / anchor.sustained : NaN;
    });
    out.push({
      reader,
      rate: spread(mine.map((r) => r.sustained)),
      ratio: spread(ratios),
      lowerBound: mine.some((r) => r.senderLimited),
      cpuPerAlertUs: spread(mine.map((r) => r.cpuPerAlertUs)),
    });
  }
  return out;
}

export const NETDM_METHOD = (rounds: number, stepS: number, rate0: number, growth: number) =>
  `One boot of Debian's 6.1 cloud kernel with drop_monitor.ko under qemu TCG (2 vCPUs), all readers in turn, ` +
  `${rounds} rounds with the order rotated. Per reader: start it, then paced steps of UDP datagrams to 127.0.0.1:9 ` +
  `(one NO_SOCKET drop, hence one packet alert, each), ${stepS} s per step, from ${rate0}/s rising ×${growth}, ` +
  `sent by one Python process calling sendmmsg(2) in batches of 32. After each step (once the reader's receive ` +
  `queue is empty and it is idle) the kernel's own counters say what was lost: NET_DM's tail-drop statistic ` +
  `(STATS_GET, \`dwdump -s\`) and the Drops column of /proc/net/netlink for the reader's sockets (sk_drops: alerts ` +
  `that found the receive buffer full). A step is kept up with when nothing was lost and the reader ` +
  `had emptied its receive queue within 10% of the step's length after the last datagram (so a large receive buffer cannot pass for speed: our ` +
  `dropwatch asks for 16 MiB, both dwdumps for 1 MiB). The ramp ends at the first step not kept up with, then ` +
  `two geometric halvings narrow the gap; the figure is the achieved rate of the fastest step kept up with below ` +
  `the slowest one that was not. Each reader's default settings (queue length 1000 per CPU). At the end each reader's accounting is checked: written + lost on socket + tail dropped = sent ` +
  `(our dwdump: its own summary line; our dropwatch: the alert blocks in its output, which goes to a file in the ` +
  `guest's tmpfs so they can be counted, and its "Lost" lines; Debian's dwdump keeps no counts, so its written is its ` +
  `write(2) count, one per pcap record). ` +
  `Absolute rates under TCG are far below a real machine's; the ratio to the anchor in the same round is the figure.`;

export interface NetdmOptions {
  rounds?: number;
  stepSeconds?: number;
  log?: (line: string) => void;
}

export async function runNetdm(opts: NetdmOptions = {}): Promise<NetdmResult> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 3;
  const stepS = opts.stepSeconds ?? 3;
  const rate0 = 1000;
  const growth = 1.3;
  const empty = (reason: string): NetdmResult => ({
    status: 'not-measured',
    reason,
    method: '',
    runs: [],
    summary: [],
    dwdumpRate: NaN,
    oursRate: NaN,
    notes: [],
  });
  const why = await guestUnavailable();
  if (why !== null) return empty(why);
  const script = readFileSync(join(projectRoot, 'bench', 'guest', 'netdm_ramp.py'), 'utf8');
  const t0 = Date.now();
  const r = await runInGuest(script, {
    lang: 'python',
    layers: ['python'],
    timeoutMs: 15 * 60_000,
    env: {
      DWB_ROUNDS: String(rounds),
      DWB_STEP_S: String(stepS),
      DWB_RATE0: String(rate0),
      DWB_GROWTH: String(growth),
    },
  });
  const bootSeconds = (Date.now() - t0) / 1000;
  for (const line of r.stderr.split('\n')) if (line.startsWith('[')) log(`  guest ${line}`);
  if (!r.moduleLoaded) return empty(`drop_monitor did not load in the guest: ${r.moduleError ?? ''}`);
  const records = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('@@J '))
    .map((l) => JSON.parse(l.slice(4)) as { kind: string } & Record<string, unknown>);
  const notes: string[] = [];
  const runs: NetdmRun[] = [];
  let senderRate: number | undefined;
  let kernel: string | undefined;
  for (const rec of records) {
    if (rec.kind === 'run') runs.push(analyseRun(rec as unknown as GuestRun));
    else if (rec.kind === 'sender') senderRate = Number(rec['rate']);
    else if (rec.kind === 'start') kernel = String(rec['kernel']);
    else if (rec.kind === 'error')
      notes.push(`${String(rec['reader'])} round ${Number(rec['round']) + 1}: ${String(rec['error'])}`);
  }
  if (r.exitCode !== 0)
    notes.push(`guest script exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  if (runs.length === 0) return { ...empty(`no run completed in the guest (${notes.join('; ')})`), notes };
  const summary = summarizeNetdm(runs);
  const rateOf = (x: NetdmReader) => summary.find((s) => s.reader === x)?.rate.median ?? NaN;
  return {
    status: 'measured',
    anchor: NETDM_LABEL.dwdump,
    method: NETDM_METHOD(rounds, stepS, rate0, growth),
    kernel,
    senderRate,
    bootSeconds,
    runs,
    summary,
    dwdumpRate: rateOf('dwdump'),
    oursRate: rateOf('ours-dwdump'),
    notes,
  };
}

/** The figure for the targets table: each round's ratio to that round's anchor, then their median. */
export function netdmRatio(n: NetdmResult, reader: NetdmReader): Spread | undefined {
  return n.summary.find((s) => s.reader === reader)?.ratio;
}
