// Pure formatters: drop events, config and stats in, dropwatch's exact text out (lines without '\n'); colour only decorates.

import type { ChalkInstance } from 'chalk';
import type { MonitorConfig, PacketDrop, StackSamples, Stats, SummaryEntry } from '../backend/types.js';
import type { Overflow } from '../aggregate/index.js';
import type { LineGroup, NetnsValue, SummaryLine } from '../aggregate/group.js';
import type { Resolved } from '../symbols/kallsyms.js';
import type { SymbolStatus } from '../symbols/loader.js';
import type { Flow } from '../packet/index.js';
import type { Workload } from '../workload/types.js';
import { arpOpName, icmpTypeName, tcpFlagsText } from '../packet/protocols.js';

/** Pass a chalk instance to colour; omit it (or give one with level 0) for plain bytes. */
export interface Style {
  chalk?: ChalkInstance;
}

function paint(style: Style | undefined, pick: (c: ChalkInstance) => ChalkInstance, text: string): string {
  return style?.chalk ? pick(style.chalk)(text) : text;
}

const U64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** glibc's `%p`: `0x` and lower-case hex without padding, `(nil)` for a null pointer. */
export function formatPointer(address: bigint): string {
  const v = U64(address);
  return v === 0n ? '(nil)' : `0x${v.toString(16)}`;
}

/**
 * One summary line. `where` is the resolved location, or null when unresolved or with `-l none`.
 * Counts print as the true unsigned value; dropwatch's `%d` would show counts of 2^31 and up as negative.
 */
export function formatSummaryLine(entry: SummaryLine, where: Resolved | null, style?: Style): string {
  const group = entry.group;
  if (group && !group.keys.includes('location')) {
    const parts = group.keys.includes('reason')
      ? [`reason ${token(entry.reason)}`, ...groupWords(group)]
      : groupWords(group);
    return `${paint(style, (c) => c.bold, String(entry.count))} drops · ${parts.join(' ')}`;
  }
  const line = locationLine(entry, where, style);
  return group ? `${line} · ${groupWords(group).join(' ')}` : line;
}

/** dropwatch's line for one location, with the reason where the source gives one. */
function locationLine(entry: SummaryEntry, where: Resolved | null, style?: Style): string {
  const count = paint(style, (c) => c.bold, String(entry.count));
  let line: string;
  if (entry.origin === 'hardware') {
    line = `${count} drops at ${paint(style, (c) => c.magenta, entry.trap ?? 'unknown trap')} ${paint(style, (c) => c.magenta, '[hardware]')}`;
  } else if (U64(entry.pc) === 0n) {
    // PC 0 is NET_DM's NIC rx_dropped heuristic (a device counter went up), not a code location; dropwatch would
    // print "location (nil)". Keep the "N drops at " prefix so line-oriented readers still parse it.
    line = `${count} drops at ${paint(style, (c) => c.cyan, 'device rx_dropped counter')} ${paint(style, (c) => c.green, '[software]')}`;
  } else if (where) {
    const address = paint(style, (c) => c.dim, `(${formatPointer(entry.pc)})`);
    line = `${count} drops at ${paint(style, (c) => c.cyan, `${where.symbol}+${where.offset.toString(16)}`)} ${address} ${paint(style, (c) => c.green, '[software]')}`;
  } else {
    line = `${count} drops at location ${paint(style, (c) => c.cyan, formatPointer(entry.pc))} ${paint(style, (c) => c.green, '[software]')}`;
  }
  return entry.reason === null ? line : `${line} ${paint(style, (c) => c.yellow, entry.reason)}`;
}

/**
 * A value on a grouped line as one word: as it is when plain, else quoted with escapes (a task named `a b` or `-`), so
 * a line always splits on spaces and `-` always means none.
 */
export function token(value: string | null): string {
  if (value === null) return '-';
  if (value !== '-' && /^[!-~]+$/.test(value) && !/["()\\]/.test(value)) return value;
  return JSON.stringify(value).replace(/[^ -~]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `netns host`, `netns blue (4026532042)`, `netns 4026532042`, `netns -`. */
function netnsWords(n: NetnsValue): string {
  if (n.inode === null) return 'netns -';
  if (n.name === null) return `netns ${n.inode}`;
  return n.name === 'host' ? 'netns host' : `netns ${token(n.name)} (${n.inode})`;
}

/**
 * The words after a grouped line's ` · `, always in this order, whatever the order of the keys: pod, container,
 * namespace, device, task. A container or pod not known stands in by its namespace (or is `-` when the namespace is
 * asked for too).
 */
function groupWords({ keys, values: v }: LineGroup): string[] {
  const netnsAsked = keys.includes('netns');
  const words: string[] = [];
  if (keys.includes('pod')) {
    if (v.pod) words.push(`pod ${token(v.pod)}`);
    else if (netnsAsked) words.push('pod -');
  }
  if (keys.includes('container')) {
    const c = v.container;
    if (c) words.push(containerWords(c.id, c.name));
    else if (netnsAsked) words.push('container -');
  }
  if (v.netns) words.push(netnsWords(v.netns));
  if (v.dev) {
    const { ifname, ifindex } = v.dev;
    words.push(`dev ${ifname !== null ? token(ifname) : ifindex !== null ? `if${ifindex}` : '-'}`);
  }
  if (keys.includes('comm')) words.push(`comm ${token(v.comm ?? null)}`);
  return words;
}

/** `container web (1a2b3c4d5e6f)`, or `container 1a2b3c4d5e6f` without a name. */
function containerWords(id: string, name: string | null): string {
  return name === null ? `container ${id.slice(0, 12)}` : `container ${token(name)} (${id.slice(0, 12)})`;
}

/**
 * A packet's workload in the summary's words (`pod …`, `container …`, `netns …`), or null when nothing is known but
 * that it is the host's: then its block stays dropwatch's.
 */
export function workloadWords(w: Workload): string | null {
  if (w.netnsName === 'host' && w.container === null && w.pod === null) return null;
  let words = w.pod === null ? '' : `pod ${token(w.pod)} `;
  if (w.container !== null) words += `${containerWords(w.container, w.containerName)} `;
  return words + netnsWords({ inode: w.netns, name: w.netnsName });
}

/** The aggregator's overflow tally as one line in the same `N drops at ` shape (`N drops · ` for grouped lines). */
export function formatOverflowLine(overflow: Overflow & { grouped?: true }, style?: Style): string {
  const distinct = `${overflow.distinct}${overflow.distinctIsLowerBound ? '+' : ''}`;
  if (overflow.grouped)
    return paint(
      style,
      (c) => c.yellow,
      `${overflow.drops} drops · ${distinct} more lines not listed (over ${overflow.limit} lines this interval)`,
    );
  return paint(
    style,
    (c) => c.yellow,
    `${overflow.drops} drops at ${distinct} more locations not listed (over ${overflow.limit} locations this interval)`,
  );
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number): string => String(n).padStart(2, '0');

/** asctime(localtime(t)) without its newline: `%.3s %.3s%3d %.2d:%.2d:%.2d %d`; local time from the TZ environment. */
export function formatAsctime(date: Date): string {
  return (
    `${DAYS[date.getDay()]} ${MONTHS[date.getMonth()]}${String(date.getDate()).padStart(3, ' ')} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())} ${date.getFullYear()}`
  );
}

/** The last second formatted, and under which TZ: a packet flood formats the same second thousands of times. */
let lastSecond = -1n;
let lastTz: string | undefined;
let lastAsctime = '';

/** dropwatch's timestamp value: asctime of the whole seconds, then the nanoseconds as `%09d`, then `nsec`. */
export function formatTimestamp(ns: bigint): string {
  const v = U64(ns);
  const seconds = v / 1_000_000_000n;
  const rest = Number(v - seconds * 1_000_000_000n);
  const tz = process.env.TZ;
  if (seconds !== lastSecond || tz !== lastTz) {
    lastAsctime = formatAsctime(new Date(Number(seconds) * 1000));
    lastSecond = seconds;
    lastTz = tz;
  }
  return `${lastAsctime} ${String(rest).padStart(9, '0')} nsec`;
}

export interface PacketStyle extends Style {
  /** Names the frames of a packet's call chain; without it the chain is not printed. */
  frame?: FrameResolver;
  /**
   * Our lookup of `pc`, used only when the packet carries no kernel-formatted symbol (tracefs); NET_DM always sends
   * one with the PC, and dropwatch prints that.
   */
  resolved?: Resolved | null;
}

/**
 * A packet-mode block exactly as dropwatch's handle_dm_packet_alert_msg prints it, ending with the blank line.
 * `workload` is what is known of the packet's namespace (null or left out: nothing, and no line for it).
 */
export function formatPacket(p: PacketDrop, style?: PacketStyle, workload?: Workload | null): string[] {
  const lines: string[] = [];
  if (p.pc !== undefined && p.symbol !== undefined) {
    lines.push(`drop at: ${paint(style, (c) => c.cyan, p.symbol)} (0x${U64(p.pc).toString(16)})`);
  } else if (p.trapName !== undefined && p.trapGroup !== undefined) {
    lines.push(`drop at: ${paint(style, (c) => c.magenta, p.trapName)} (${p.trapGroup})`);
  } else if (p.pc !== undefined) {
    // Not a dropwatch form: a PC without a kernel symbol string. Kernel %pS style for the name, or the raw address.
    const r = style?.resolved;
    if (r) {
      const name = `${r.symbol}+0x${r.offset.toString(16)}${r.module === undefined ? '' : ` [${r.module}]`}`;
      lines.push(`drop at: ${paint(style, (c) => c.cyan, name)} (0x${U64(p.pc).toString(16)})`);
    } else {
      lines.push(`drop at: location 0x${U64(p.pc).toString(16)}`);
    }
  }
  lines.push(`origin: ${p.origin}`);
  if (p.inPort?.ifindex !== undefined) lines.push(`input port ifindex: ${p.inPort.ifindex | 0}`);
  if (p.inPort?.name !== undefined) lines.push(`input port name: ${p.inPort.name}`);
  if (p.cookie !== undefined) lines.push(`cookie: ${Buffer.from(p.cookie).toString('hex')}`);
  if (p.timestampNs !== undefined) lines.push(`timestamp: ${formatTimestamp(p.timestampNs)}`);
  if (p.protocol !== undefined) lines.push(`protocol: 0x${p.protocol.toString(16)}`);
  if (p.payload !== undefined) lines.push(`length: ${p.payload.length}`);
  if (p.origLen !== undefined) lines.push(`original length: ${p.origLen >>> 0}`);
  if (p.reason !== undefined) lines.push(`drop reason: ${paint(style, (c) => c.yellow, p.reason)}`);
  // Ours, after dropwatch's lines, so a reader of those finds them unchanged.
  if (p.flow !== undefined) lines.push(`flow: ${paint(style, (c) => c.blue, formatFlow(p.flow))}`);
  const whose = workload ? workloadWords(workload) : null;
  if (whose !== null) lines.push(`workload: ${whose}`);
  if (p.pid !== undefined) lines.push(`process: ${p.comm ?? '?'} (pid ${p.pid})`);
  if (p.stack !== undefined && style?.frame) lines.push(`call chain: ${formatChain(p.stack, style.frame)}`);
  lines.push('');
  return lines;
}

/** An address and port as tcpdump joins them: `10.0.0.1.53`, `::1.53`; the address alone without a port. */
const endpoint = (address: string | null, port: number | null): string =>
  `${address ?? '?'}${port === null ? '' : `.${port}`}`;

/**
 * A packet's flow on one line, as tcpdump prints it where it can: `IP 127.0.0.1.40001 > 127.0.0.1.9: UDP, length 1`,
 * `IP6 ::1.40002 > ::1.10: TCP, Flags [S], length 0`, `ARP Request 10.0.0.2 > 10.0.0.1, length 28`. VLAN tags come
 * first (`vlan 100, vlan 200, IP …`), a fragment and where decoding stopped come last.
 */
export function formatFlow(f: Flow): string {
  // Plain concatenation: this runs for every dropped packet in a storm.
  let line = f.vlans.length === 0 ? '' : `vlan ${f.vlans.join(', vlan ')}`;
  // tcpdump separates a header from its details with ", "; after the addresses' ":" a space.
  const add = (text: string): void => {
    line = line === '' ? text : line.endsWith(':') ? `${line} ${text}` : `${line}, ${text}`;
  };
  if (f.l3 === 'ipv4' || f.l3 === 'ipv6') {
    const family = f.l3 === 'ipv4' ? 'IP' : 'IP6';
    add(
      f.src === null && f.dst === null
        ? family
        : `${family} ${endpoint(f.src, f.sport)} > ${endpoint(f.dst, f.dport)}:`,
    );
    if (f.l4 !== null) add(transport(f));
    if (f.length !== undefined) add(`length ${f.length}`);
    if (f.fragment !== undefined)
      add(`fragment offset ${f.fragment.offset}${f.fragment.more ? ', more fragments' : ''}`);
  } else if (f.l3 === 'arp') {
    const op = f.arpOp === undefined ? '' : ` ${arpOpName(f.arpOp)}`;
    add(f.src === null && f.dst === null ? `ARP${op}` : `ARP${op} ${f.src ?? '?'} > ${f.dst ?? '?'}`);
    if (f.length !== undefined) add(`length ${f.length}`);
  } else if (f.etherType !== undefined) {
    add(f.etherType < 0x0600 ? '802.3' : `ethertype 0x${f.etherType.toString(16).padStart(4, '0')}`);
  }
  if (f.stopped !== null) add(f.stopped);
  return line;
}

function transport(f: Flow): string {
  const l4 = f.l4!;
  if (l4 === 'tcp') return f.tcpFlags === undefined ? 'TCP' : `TCP, Flags [${tcpFlagsText(f.tcpFlags)}]`;
  if ((l4 === 'icmp' || l4 === 'icmpv6') && f.icmpType !== undefined) {
    const name = icmpTypeName(f.icmpType, l4 === 'icmpv6');
    const kind = name ?? `type ${f.icmpType}`;
    const code = f.icmpCode !== undefined && (f.icmpCode !== 0 || name === null) ? ` code ${f.icmpCode}` : '';
    return `${l4 === 'icmp' ? 'ICMP' : 'ICMP6'} ${kind}${code}`;
  }
  if (l4 === 'icmpv6') return 'ICMP6';
  // A protocol without a name is its number.
  return l4.charCodeAt(0) <= 0x39 ? `ip-proto-${l4}` : l4.toUpperCase();
}

/** Resolves one return address of a call chain; null when it cannot be named. */
export type FrameResolver = (pc: bigint) => Resolved | null;

/** `sym+off [module]` for a named frame, as the summary line names its location; the raw address otherwise. */
export function formatFrame(pc: bigint, resolve: FrameResolver): string {
  const r = resolve(pc);
  if (!r) return formatPointer(pc);
  return `${r.symbol}+${r.offset.toString(16)}${r.module === undefined ? '' : ` [${r.module}]`}`;
}

/** A call chain on one line, innermost caller first: `a+1 < b+2 < ...` reads "a, called from b, ...". */
export function formatChain(frames: readonly bigint[], resolve: FrameResolver): string {
  return frames.map((pc) => formatFrame(pc, resolve)).join(' < ');
}

/**
 * The lines under a summary line: its most frequent call chains, `limit` at most, the rest summed on one line. Each
 * starts with spaces, so readers of `N drops at` lines (grep, log parsers) pass over them.
 */
export function formatStackLines(stacks: StackSamples, resolve: FrameResolver, limit: number, style?: Style): string[] {
  const lines = [`  call chains of ${stacks.sampled} sampled drop${stacks.sampled === 1 ? '' : 's'}:`];
  const shown = stacks.chains.slice(0, limit);
  const width = String(shown[0]?.count ?? 0).length;
  for (const chain of shown)
    lines.push(
      `    ${String(chain.count).padStart(width)}  ${paint(style, (c) => c.dim, formatChain(chain.frames, resolve))}`,
    );
  const rest = stacks.sampled - shown.reduce((sum, c) => sum + c.count, 0);
  if (rest > 0) {
    const chains = stacks.chains.length - shown.length;
    lines.push(
      `    ${rest} more in ${chains > 0 ? `${chains} other chain${chains === 1 ? '' : 's'}` : 'chains not kept'}`,
    );
  }
  return lines;
}

/** `show`: the kernel's current configuration. */
export function formatShow(config: MonitorConfig): string[] {
  return [
    `Alert mode: ${config.alertMode === 'summary' ? 'Summary' : 'Packet'}`,
    `Truncation length: ${config.truncLen >>> 0}`,
    `Queue length: ${config.queueLen >>> 0}`,
  ];
}

/** `stats`: dropwatch's sections when the backend has them, then one line per place we lost events. */
export function formatStats(stats: Stats, style?: Style): string[] {
  const lines: string[] = [];
  if (stats.software) lines.push('Software statistics:', `Tail dropped: ${U64(stats.software.tailDropped)}`);
  if (stats.hardware) lines.push('Hardware statistics:', `Tail dropped: ${U64(stats.hardware.tailDropped)}`);
  for (const lost of stats.lost) {
    const count = lost.count > 0 ? paint(style, (c) => c.red, String(lost.count)) : String(lost.count);
    lines.push(`Lost before delivery: ${count} (${lost.where})`);
  }
  if (stats.kernelFiltered !== undefined) lines.push(`Kept back by the kernel filter: ${stats.kernelFiltered}`);
  return lines;
}

// Every loss is said once, as `Lost N drop events …`, so summing those lines counts each; the totals at stop read
// `In total, N drop events were lost …` and are never summed with them.

/** One report of drop events lost on the way to us, printed as it comes (on stderr). */
export function formatLostLine(count: number, where: string): string {
  return `Lost ${count} drop events before they reached dropwatch (${where})`;
}

/** Drops counted but not printed because the reader of our output fell behind (see the session's congestion check). */
export function formatUnwrittenLine(count: number): string {
  return `Lost ${count} drop events that dropwatch could not print: the reader of its output fell behind`;
}

/** Drops written to standard output that its reader had not taken when the run ended: the run's last loss. */
export function formatUntakenLine(count: number): string {
  return `Lost ${count} drop events that dropwatch wrote but the reader of standard output never took`;
}

/** The total of formatUnwrittenLine's losses at stop. */
export function formatUnwrittenTotal(count: number): string {
  return `In total, ${count} drop events were lost: dropwatch could not print them, the reader of its output fell behind`;
}

/** The total for one place at stop. */
export function formatLostTotal(count: number, where: string): string {
  return `In total, ${count} drop events were lost before they reached dropwatch (${where})`;
}

/** The one-time notice when addresses cannot be resolved, or null when they can; `cause` says why they are hidden. */
export function formatSymbolNotice(status: SymbolStatus, error?: Error, cause?: string): string | null {
  switch (status) {
    case 'ok':
      return null;
    case 'hidden':
      return `kernel symbol addresses are hidden: ${cause ?? 'kernel.kptr_restrict, or CAP_SYSLOG missing'}; printing raw addresses`;
    case 'unavailable':
      return `${error?.message ?? 'cannot read /proc/kallsyms'}; printing raw addresses`;
  }
}
