// The live view's screen as data, pure: the model and the view's state in, lines of styled text out, each fitting the
// terminal's width.
import type { Resolved } from '../symbols/kallsyms.js';
import type { WorkloadNames } from '../workload/types.js';
import type { Group, GroupBy, Grouping } from './groups.js';
import { HISTORY, mainReason, type Row, type Site, type SiteDrop, type SortKey, type TopModel } from './model.js';

export interface Size {
  columns: number;
  rows: number;
}

/** What a piece of text means; the view maps it to colour, or to nothing without colour. */
export type Tone = 'title' | 'heading' | 'lost' | 'selected' | 'dim' | 'error' | 'notice' | 'paused' | 'spark';

export interface Segment {
  text: string;
  tone?: Tone;
}

export type Line = Segment[];

export interface Frame {
  lines: Line[];
  /** The first row shown, for the next frame to scroll from. */
  scroll: number;
}

export interface ViewState {
  sort: SortKey;
  /** Key of the selected site, or null before an arrow key is pressed. */
  selected: string | null;
  /** First row shown. */
  scroll: number;
  /** Key of the expanded site. */
  expanded: string | null;
  help: boolean;
  paused: boolean;
  /** The filter being typed after `/`, or null. */
  input: string | null;
  /** The last thing to tell the user: a session message, a filter result, a filter error. */
  status: { text: string; error: boolean } | null;
  /** What a row is: a drop location, or a workload (container/pod, namespace, device) or reason with its sites. */
  group: GroupBy;
}

/** How the view opens: by location, sorted by rate, nothing selected, expanded or paused. */
export const INITIAL_VIEW_STATE: Readonly<ViewState> = {
  group: 'location',
  sort: 'rate',
  selected: null,
  scroll: 0,
  expanded: null,
  help: false,
  paused: false,
  input: null,
  status: null,
};

export interface Describe {
  backend: string;
  /** The filter in force, as the REPL shows it, or null. */
  filter: string | null;
  /** Seconds since the view started. */
  elapsedSeconds: number;
  /** Whether the backend adds call chains / flows, from its capabilities. */
  stacks: boolean;
  flows: boolean;
  /** ASCII stand-ins for every glyph, for a terminal whose locale is not UTF-8. */
  ascii?: boolean;
  /** Names for namespaces when grouped by workload; without them a namespace is its inode. */
  workloads?: WorkloadNames | null;
}

/** The rows the view shows in this state: the sites, or the groups of the grouping, sorted. */
export function shownRows(
  model: TopModel,
  state: Pick<ViewState, 'group' | 'sort'>,
  names: WorkloadNames | null,
): readonly Row[] {
  return state.group === 'location' ? model.rows(state.sort) : model.groupRows(state.group, state.sort, names);
}

/** The location column's text, made once per site: as the text output names it, with the module when there is one. */
export function locationLabel(drop: SiteDrop, lookup: (pc: bigint) => Resolved | null): string {
  if (drop.origin === 'hardware') return drop.trap ?? 'unknown trap';
  if (drop.pc === 0n) return 'device rx_dropped counter';
  const where = lookup(drop.pc);
  if (where) return `${where.symbol}+${where.offset.toString(16)}${where.module ? ` [${where.module}]` : ''}`;
  return drop.symbol ?? `0x${drop.pc.toString(16)}`;
}

export const SPARK_LEVELS = '▁▂▃▄▅▆▇█';
export const ASCII_SPARK_LEVELS = '.:-=+*#@';

/** What the view draws beyond plain words; each stand-in takes as many cells as what it stands for, but the arrows. */
interface Glyphs {
  spark: string;
  /** After the heading the rows are sorted by. */
  sorted: string;
  /** Where a name was cut. */
  cut: string;
  /** The typing position in the filter line. */
  cursor: string;
  times: string;
  /** The arrow keys, in the footer and in help. */
  arrows: string;
  arrowKeys: string;
}

const UNICODE: Glyphs = {
  spark: SPARK_LEVELS,
  sorted: '▼',
  cut: '…',
  cursor: '█',
  times: '×',
  arrows: '↑↓',
  arrowKeys: '↑ ↓',
};
const ASCII: Glyphs = {
  spark: ASCII_SPARK_LEVELS,
  sorted: '*',
  cut: '~',
  cursor: '_',
  times: 'x',
  arrows: 'Up/Down',
  arrowKeys: 'Up, Down',
};

/** Cuts `text` to `width` code points by removing its middle, so both a symbol's start and its offset stay. */
export function cutMiddle(text: string, width: number, cut = UNICODE.cut): string {
  const cps = Array.from(text);
  if (cps.length <= width) return text;
  if (width <= 0) return '';
  if (width === 1) return cut;
  const head = Math.ceil((width - 1) / 2);
  const tail = width - 1 - head;
  return `${cps.slice(0, head).join('')}${cut}${tail > 0 ? cps.slice(-tail).join('') : ''}`;
}

/** Cuts `text` to `width` code points at the end. */
export function cutEnd(text: string, width: number, cut = UNICODE.cut): string {
  const cps = Array.from(text);
  if (cps.length <= width) return text;
  if (width <= 0) return '';
  return `${cps.slice(0, width - 1).join('')}${cut}`;
}

/** Text from elsewhere (a filter, a message) in ASCII: an ellipsis as three dots, any other non-ASCII as `?`. */
function toAscii(text: string): string {
  return /^[\x00-\x7f]*$/.test(text)
    ? text
    : Array.from(text, (c) => (c === '…' ? '...' : c > '\x7f' ? '?' : c)).join('');
}

const width = (text: string): number => Array.from(text).length;
const padStart = (text: string, w: number): string => ' '.repeat(Math.max(0, w - width(text))) + text;
const padEnd = (text: string, w: number): string => text + ' '.repeat(Math.max(0, w - width(text)));

/** One character per value, scaled to the largest: a blank for none, at least the lowest bar for any drop. */
export function sparkline(values: readonly number[], columns: number, levels = SPARK_LEVELS): string {
  const shown = values.slice(-columns);
  let max = 0;
  for (const v of shown) if (v > max) max = v;
  let out = '';
  for (const v of shown) {
    if (v <= 0 || max === 0) out += ' ';
    else out += levels[Math.max(0, Math.ceil((v / max) * levels.length) - 1)];
  }
  return padStart(out, columns);
}

const SUFFIXES = ['', 'k', 'M', 'G', 'T', 'P'];

/** A count in at most `w` characters: with thousands separators when it fits, else 12.3k, 4.5M... */
export function fitNumber(n: number, w: number): string {
  const rounded = Math.round(n);
  const full = rounded.toLocaleString('en-US');
  if (full.length <= w) return full;
  let v = rounded;
  let i = 0;
  while (v >= 1000 && i < SUFFIXES.length - 1) {
    v /= 1000;
    i++;
  }
  const short = v < 100 ? `${v.toFixed(1)}${SUFFIXES[i]}` : `${Math.round(v)}${SUFFIXES[i]}`;
  return short.length <= w ? short : `${Math.round(v)}${SUFFIXES[i]}`;
}

/** A rate as the header shows it: as fitNumber does, but below 10 a fraction keeps its tenth (0.3). */
export function fitRate(n: number, w: number): string {
  return n < 9.95 && !Number.isInteger(n) ? n.toFixed(1) : fitNumber(n, w);
}

/** 45s, 3m05s, 2h07m, 3d04h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

const RATE_W = 8;
const TOTAL_W = 10;
const ORIGIN_W = 8;
const REASON_MAX = 24;
const LOCATION_MIN = 12;
const LOCATION_WANT = 40;
const SPARK_MIN = 10;

export interface Columns {
  rank: number;
  rate: number;
  total: number;
  /** 0 when the terminal is too narrow for one. */
  spark: number;
  location: number;
  origin: number;
  reason: number;
}

/**
 * Column widths for `columns` terminal cells, sized to the rows on screen (`shown`, of `count` in all); the location
 * column takes what the others leave.
 */
export function columnsFor(columns: number, count: number, shown: readonly RowText[]): Columns {
  const rank = Math.max(2, String(count).length) + 1;
  let reason = 6;
  for (const s of shown) reason = Math.max(reason, width(s.last));
  reason = Math.min(reason, REASON_MAX);
  // One space between columns: rank rate total [spark] location origin reason.
  const fixed = rank + 1 + RATE_W + 1 + TOTAL_W + 1 + 1 + ORIGIN_W + 1 + reason;
  let rest = columns - fixed;
  let origin = ORIGIN_W;
  let reasonW = reason;
  if (rest < LOCATION_MIN) {
    // Narrow: drop the origin, then squeeze the reason, before the location goes below its minimum.
    rest += origin + 1;
    origin = 0;
    const squeeze = Math.min(reasonW - 6, Math.max(0, LOCATION_MIN - rest));
    reasonW -= squeeze;
    rest += squeeze;
  }
  let longest = LOCATION_MIN;
  for (const s of shown) longest = Math.max(longest, width(s.label));
  const want = Math.min(longest, LOCATION_WANT);
  let spark = Math.min(HISTORY, rest - want - 1);
  if (spark < SPARK_MIN) spark = 0;
  const location = Math.max(1, rest - (spark > 0 ? spark + 1 : 0));
  return { rank, rate: RATE_W, total: TOTAL_W, spark, location, origin, reason: reasonW };
}

function reasonText(site: Pick<Row, 'reasons'>): string {
  const main = mainReason(site) ?? '-';
  return site.reasons.size > 1 ? `${main} +${site.reasons.size - 1}` : main;
}

/** A row's words: its label, its origin (a site) or number of sites (a group), its reason (or, by reason, top site). */
export interface RowText {
  label: string;
  middle: string;
  last: string;
}

export function rowText(row: Row, group: GroupBy): RowText {
  if (group === 'location') return { label: row.label, middle: (row as Site).origin, last: reasonText(row) };
  const cells = [...(row as Group).cells.values()];
  const sites = new Set(cells.map((c) => c.site)).size;
  const middle = `${sites}${(row as Group).other.total > 0 ? '+' : ''}`;
  if (group !== 'reason') return { label: row.label, middle, last: reasonText(row) };
  const top = cells.reduce<(typeof cells)[number] | null>(
    (best, c) => (!best || c.last > best.last || (c.last === best.last && c.total > best.total) ? c : best),
    null,
  );
  return { label: row.label, middle, last: top?.label ?? '-' };
}

/** The column headings: what the rows are (`location`, `netns`...), and what the two columns after it hold. */
const HEADINGS: Record<GroupBy, [string, string, string]> = {
  location: ['location', 'origin', 'reason'],
  workload: ['workload', 'sites', 'reason'],
  netns: ['netns', 'sites', 'reason'],
  device: ['device', 'sites', 'reason'],
  reason: ['reason', 'sites', 'top site'],
};

function headingLine(c: Columns, sort: SortKey, group: GroupBy, g: Glyphs): Line {
  const mark = (name: SortKey, text: string) => (sort === name ? `${text}${g.sorted}` : text);
  const [what, middle, last] = HEADINGS[group];
  const parts = [
    padStart('#', c.rank),
    padStart(mark('rate', 'drops/s'), c.rate),
    padStart(mark('total', 'total'), c.total),
    ...(c.spark > 0 ? [padEnd(`last ${c.spark}s`, c.spark)] : []),
    padEnd(mark('name', what), c.location),
    ...(c.origin > 0 ? [padEnd(middle, c.origin)] : []),
    last,
  ];
  return [{ text: parts.join(' '), tone: 'heading' }];
}

function rowLine(
  model: TopModel,
  site: Row,
  text: RowText,
  rank: number,
  c: Columns,
  selected: boolean,
  g: Glyphs,
): Line {
  const rankText = selected ? `>${padStart(String(rank), c.rank - 1)}` : padStart(String(rank), c.rank);
  const numbers = `${rankText} ${padStart(fitNumber(model.rate(site.last), c.rate), c.rate)} ${padStart(fitNumber(site.total, c.total), c.total)} `;
  const reason = cutMiddle(text.last, c.reason, g.cut);
  // Only the selected row keeps its trailing blanks (its highlight spans the table); the rest are not drawn at all.
  const rest = [
    padEnd(cutMiddle(text.label, c.location, g.cut), c.location),
    ...(c.origin > 0 ? [padEnd(text.middle, c.origin)] : []),
    selected ? padEnd(reason, c.reason) : reason,
  ].join(' ');
  const tone: Tone | undefined = selected ? 'selected' : undefined;
  const seg = (text: string, t?: Tone): Segment => (tone ? { text, tone } : t ? { text, tone: t } : { text });
  if (c.spark === 0) return [seg(numbers + rest)];
  return [seg(numbers), seg(sparkline(model.recent(site, c.spark), c.spark, g.spark), 'spark'), seg(` ${rest}`)];
}

/** The lines under an expanded row: a site's reasons and call chains, or a group's sites and reasons. */
function expansion(model: TopModel, row: Row, group: GroupBy, d: Describe, indent: number, width: number): string[] {
  return group === 'location'
    ? siteExpansion(model, row as Site, d, indent, width)
    : groupExpansion(model, row as Group, group, d, indent, width);
}

/** Sites (and reasons) listed under an expanded group; the rest are summed on one line. */
export const CELLS_SHOWN = 8;

function groupExpansion(model: TopModel, group: Group, by: Grouping, d: Describe, indent: number, cols: number) {
  const pad = ' '.repeat(indent);
  const lines = by === 'reason' ? [] : [`${pad}${groupHeader(group, d)}`];
  const cells = [...group.cells.values()].sort((a, b) => b.total - a.total || b.last - a.last);
  const shown = cells.slice(0, CELLS_SHOWN);
  const reasonW = by === 'reason' ? 0 : Math.min(REASON_MAX, Math.max(6, ...shown.map((c) => width(c.reason ?? '-'))));
  const numbersW = 8 + 2 + 1 + 12 + 6;
  let labelW = LOCATION_MIN;
  for (const c of shown) labelW = Math.max(labelW, width(c.label));
  labelW = Math.max(8, Math.min(labelW, LOCATION_WANT, cols - indent - 2 - (reasonW ? reasonW + 1 : 0) - numbersW - 1));
  for (const c of shown) {
    const reason = by === 'reason' ? '' : ` ${padEnd(cutMiddle(c.reason ?? '-', reasonW, glyphs(d).cut), reasonW)}`;
    lines.push(
      `${pad}  ${padEnd(cutMiddle(c.label, labelW, glyphs(d).cut), labelW)}${reason} ${padStart(fitNumber(model.rate(c.last), 8), 8)}/s ${padStart(fitNumber(c.total, 12), 12)} total`,
    );
  }
  const rest = cells.slice(CELLS_SHOWN).reduce((n, c) => n + c.total, group.other.total);
  if (rest > 0) lines.push(`${pad}  ${fitNumber(rest, 16)} more drops at other sites`);
  return lines;
}

/** What is known of a group's namespaces and device: their inodes, and the container and pod of a lone one. */
function groupHeader(group: Group, d: Describe): string {
  const inodes = group.netns.filter((n): n is number => n !== null);
  const parts: string[] = [];
  if (group.place?.ifindex != null) parts.push(`ifindex ${group.place.ifindex}`);
  if (inodes.length > 0)
    parts.push(`netns ${inodes.slice(0, 3).join(', ')}${inodes.length > 3 ? ` and ${inodes.length - 3} more` : ''}`);
  if (inodes.length === 1 && d.workloads) {
    const w = d.workloads.lookup(inodes[0]!);
    if (w.container) parts.push(`container ${w.containerName ? `${w.containerName} ` : ''}${w.container.slice(0, 12)}`);
    if (w.pod) parts.push(`pod ${w.pod}`);
  }
  if (inodes.length === 0) parts.push('no network namespace: the drops had no device or socket');
  else if (group.netns.includes(null)) parts.push('and drops with no device or socket');
  return parts.join(', ');
}

function siteExpansion(model: TopModel, site: Site, d: Describe, indent: number, width: number): string[] {
  const pad = ' '.repeat(indent);
  const lines: string[] = [];
  lines.push(`${pad}${site.origin === 'hardware' ? `trap ${site.trap ?? '?'}` : site.label}`);
  const reasons = [...site.reasons].sort((a, b) => b[1].total - a[1].total);
  for (const [reason, c] of reasons)
    lines.push(
      `${pad}  ${padEnd(reason ?? '(no reason given)', 24)} ${padStart(fitNumber(model.rate(c.last), 8), 8)}/s ${padStart(fitNumber(c.total, 12), 12)} total`,
    );
  lines.push(...chainLines(site, d, pad, width));
  if (!d.flows) lines.push(`${pad}  flows: not reported by the ${d.backend} backend`);
  return lines;
}

/** Chains shown when a row is expanded; the rest are summed on one line. */
export const CHAINS_SHOWN = 3;

/** The expanded row's call chains, most taken first, each cut in the middle to the width. */
function chainLines(site: Site, d: Describe, pad: string, width: number): string[] {
  if (!d.stacks) return [`${pad}  call chains: not reported by the ${d.backend} backend`];
  if (site.sampled === 0) return [`${pad}  call chains: none sampled (--stack, or set stack true before start)`];
  const chains = [...site.chains.values()].sort((a, b) => b.total - a.total);
  const shown = chains.slice(0, CHAINS_SHOWN);
  const countWidth = String(shown[0]?.total ?? 0).length;
  const lines = [`${pad}  call chains of ${site.sampled} sampled drop${site.sampled === 1 ? '' : 's'}:`];
  for (const c of shown) {
    const lead = `${pad}    ${padStart(String(c.total), countWidth)}  `;
    lines.push(lead + cutMiddle(c.text, Math.max(8, width - Array.from(lead).length), glyphs(d).cut));
  }
  const rest = site.sampled - shown.reduce((n, c) => n + c.total, 0);
  if (rest > 0) lines.push(`${pad}    ${rest} more in other chains`);
  return lines;
}

/** The glyphs for this terminal. */
const glyphs = (d: Describe): Glyphs => (d.ascii ? ASCII : UNICODE);

const helpLines = (g: Glyphs): readonly string[] => [
  'Keys',
  '  q, Ctrl-C   quit (at the dropwatch> prompt: back to it)',
  '  p           pause the screen; counting goes on',
  '  s           sort by drops/s, total, location name in turn',
  '  g           group rows by location, workload, netns, device, reason in turn',
  `  ${g.arrowKeys.padEnd(12)}select a row (PgUp PgDn Home End too)`,
  "  Enter       expand the selected row: its reasons and call chains, or a group's sites and reasons",
  '  /           set a filter, as `set filter` at the prompt (none clears it; Esc cancels)',
  '  ?           this help; any key closes it',
  '',
  'Columns',
  '  drops/s is the last second, total since the view opened, the bars the last minute',
  '  (each row scaled to its own peak). Lost: events the kernel had but dropwatch never saw.',
];

/** Header, headings, one row and the footer. */
export const MIN_SIZE: Size = { columns: 40, rows: 8 };

const footerText = (g: Glyphs): string =>
  `q quit  p pause  s sort  g group  ${g.arrows} select  Enter expand  / filter  ? help`;

/**
 * The whole screen. It is one line shorter than the terminal: a frame as tall as the terminal would make the
 * library redraw by clearing the terminal, which also clears the user's scrollback.
 */
export function buildFrame(model: TopModel, state: ViewState, d: Describe, size: Size): Frame {
  const cols = Math.max(1, size.columns);
  const height = Math.max(1, size.rows - 1);
  const g = glyphs(d);
  if (cols < MIN_SIZE.columns || height < MIN_SIZE.rows - 1) {
    const say = `terminal too small for dropwatch top (${MIN_SIZE.columns}${g.times}${MIN_SIZE.rows} at least); q quits`;
    return {
      lines: [[{ text: cutEnd(say, cols, g.cut) }], ...Array.from({ length: height - 1 }, () => [])],
      scroll: state.scroll,
    };
  }
  const lines: Line[] = headerLines(model, state, d);

  const footer: Line[] = [];
  if (state.input !== null) {
    footer.push([{ text: `/ filter: ${state.input}${g.cursor}` }]);
    footer.push(state.status ? [{ text: state.status.text, tone: state.status.error ? 'error' : 'notice' }] : []);
  } else {
    footer.push(state.status ? [{ text: state.status.text, tone: state.status.error ? 'error' : 'notice' }] : []);
    footer.push([{ text: footerText(g), tone: 'dim' }]);
  }

  const body = height - lines.length - footer.length;
  let scroll = state.scroll;
  if (state.help) {
    for (const text of helpLines(g).slice(0, Math.max(0, body))) lines.push([{ text }]);
  } else {
    const table = tableLines(model, state, d, cols, body);
    lines.push(...table.lines);
    scroll = table.scroll;
  }
  while (lines.length < height - footer.length) lines.push([]);
  lines.push(...footer);
  return { lines: lines.map((line) => fit(line, cols, d.ascii ?? false)), scroll };
}

/** The title, the totals and the settings line. */
function headerLines(model: TopModel, state: ViewState, d: Describe): Line[] {
  const title: Line = [
    { text: `dropwatch top  ${d.backend}  running ${formatDuration(d.elapsedSeconds)}`, tone: 'title' },
  ];
  if (state.paused) title.push({ text: '  ' }, { text: 'PAUSED', tone: 'paused' });
  const lost: Segment =
    model.lostTotal > 0
      ? {
          text: `LOST ${fitNumber(model.lostTotal, 14)}${model.lostWhere ? ` (${model.lostWhere})` : ''}`,
          tone: 'lost',
        }
      : { text: 'lost 0' };
  let over = model.overflowTotal > 0 ? `  over the site cap ${fitNumber(model.overflowTotal, 14)}` : '';
  const outside = state.group === 'location' ? 0 : model.groupOverflow(state.group);
  if (outside > 0) over += `  over the group cap ${fitNumber(outside, 14)}`;
  const grouped = state.group === 'location' ? '' : `  group ${state.group}`;
  return [
    title,
    [
      {
        text: `drops/s ${fitRate(model.rate(model.last), 12)} now, ${fitRate(model.averageRate(), 12)} since start  total ${fitNumber(model.total, 16)}  sites ${model.size}${over}  `,
      },
      lost,
    ],
    [{ text: `filter ${d.filter ?? 'none'}  sort ${state.sort}${grouped}` }],
  ];
}

/** The column headings and as many rows (and the expanded row's lines) as fit in `body` lines. */
function tableLines(model: TopModel, state: ViewState, d: Describe, cols: number, body: number) {
  const g = glyphs(d);
  const rows = shownRows(model, state, d.workloads ?? null);
  const room = body - 1;
  const { first, selected } = visibleWindow(rows, state, room, model, d);
  const texts = rows.slice(first, first + room).map((r) => rowText(r, state.group));
  const c = columnsFor(cols, rows.length, texts);
  const lines: Line[] = [headingLine(c, state.sort, state.group, g)];
  let used = 0;
  for (let i = first; i < rows.length && used < room; i++) {
    const row = rows[i]!;
    lines.push(rowLine(model, row, texts[i - first]!, i + 1, c, i === selected, g));
    used++;
    if (state.expanded === row.key)
      for (const text of expansion(model, row, state.group, d, c.rank + 1, cols)) {
        if (used >= room) break;
        lines.push([{ text, tone: 'dim' }]);
        used++;
      }
  }
  if (rows.length === 0 && room > 0) lines.push([{ text: 'no drops yet', tone: 'dim' }]);
  return { lines, scroll: first };
}

/** Which row is selected and the first row shown, so the selection (and its expansion) is on screen. */
export function visibleWindow(
  rows: readonly Row[],
  state: ViewState,
  room: number,
  model?: TopModel,
  d?: Describe,
): { first: number; selected: number } {
  const selected = state.selected === null ? -1 : rows.findIndex((s) => s.key === state.selected);
  let first = Math.min(state.scroll, Math.max(0, rows.length - room));
  if (selected >= 0) {
    const extra =
      state.expanded === state.selected && model && d
        ? expansion(model, rows[selected]!, state.group, d, 0, Number.MAX_SAFE_INTEGER).length
        : 0;
    if (selected < first) first = selected;
    if (selected + extra >= first + room) first = Math.max(0, selected + extra - room + 1);
  }
  return { first: Math.max(0, first), selected };
}

/** Cuts a line's segments to `cols` cells in all; in ASCII, text from elsewhere becomes ASCII first. */
function fit(line: Line, cols: number, ascii: boolean): Line {
  const out: Line = [];
  let left = cols;
  for (const original of line) {
    if (left <= 0) break;
    const seg = ascii ? { ...original, text: toAscii(original.text) } : original;
    const w = width(seg.text);
    if (w <= left) {
      out.push(seg);
      left -= w;
    } else {
      out.push({ ...seg, text: cutEnd(seg.text, left, ascii ? ASCII.cut : UNICODE.cut) });
      left = 0;
    }
  }
  return out;
}
