// Command-line parsing for dropwatch: commander configured to report, never to exit, so one handler owns the exit code.
// Filter expressions are left as text here; options.ts parses them, so their errors name the option.
import { Command, Option } from 'commander';
import { DropwatchError, quote } from '../errors/index.js';
import { parseArgs } from '../process/commander.js';
import { sourceChoices, sources } from '../sources/index.js';
import { either } from '../backend/words.js';
import { packageVersion } from '../process/version.js';
import type { AlertMode, BackendName } from '../backend/types.js';
import type { Expr } from '../filter/index.js';
import type { LookupMethod } from '../output/symbols.js';
import { BY_KEYS, isDefaultBy, parseBy, type ByKey } from '../aggregate/keys.js';
import { DEFAULT_MAX_SERIES, parseMetricsLabels, type MetricsLabelKey } from '../metrics/labels.js';

export type { LookupMethod };
export type OutputFormat = 'text' | 'json';

export interface MetricsAddress {
  host: string;
  /** 0 asks the kernel for a free port (the address in use is printed on stderr). */
  port: number;
}

export interface DropwatchOptions {
  lookup: LookupMethod;
  /** `-l list`: print the methods and exit. */
  listMethods: boolean;
  /** A source's name, or `auto`. */
  backend: BackendName;
  /** `-s`: monitor at once, no prompt; stop on duration, alert limit or a signal. */
  start: boolean;
  /** `-d`: how long a `-s` run monitors, in milliseconds; null runs until a signal or the limit. */
  durationMs: number | null;
  /** `-n`: initial alert limit (0 = none); null leaves the default. */
  alertLimit: number | null;
  /** `-m`: alert mode set before monitoring; null leaves the kernel's. */
  mode: AlertMode | null;
  /** `--timestamp`: ISO-8601 UTC time at the start of each text drop line. */
  timestamp: boolean;
  format: OutputFormat;
  metrics: MetricsAddress | null;
  /** `--metrics-labels`: workload labels added to dropwatch_drops_total (none by default). */
  metricsLabels: readonly MetricsLabelKey[];
  /** `--metrics-max-series`: label sets that keep their workload labels; later ones are summed under `other`. */
  metricsMaxSeries: number;
  /** `--filter` and `--ignore-reason` together; `set filter` in the REPL adds to it. */
  filter: Expr | null;
  /** `--stack`: sample the call chains behind drops (as `set stack true`). */
  stack: boolean;
  /** `--top`: the live view of drop sites instead of the prompt. */
  top: boolean;
  /** `--by`: what summary lines are grouped by (as `set by`); dropwatch's line by location by default. */
  by: ByKey[];
}

/** dropwatch's own usage line (kept byte-identical for scripts that match it); `--help` lists our options. */
export const usage = (): string =>
  `dropwatch [-l|--lmethod <method | list>] [-b|--backend ${sourceChoices().join('|')}]`;

/** A name as a message shows it: as typed when it is one plain word, else quoted, so an empty one is seen. */
const named = (text: string): string => (/^[\w.+-]+$/.test(text) ? text : quote(text));

/** `-b`'s help, from the source table: "auto (NET_DM, else tracefs), netdm or tracefs". */
function backendHelp(): string {
  const names = sources().map((s) => s.name);
  const order = sources()
    .map((s) => s.label)
    .join(', else ');
  return `drop source: auto (${order}), ${either(names)}`;
}

/** What the program watches, from the source table. */
const readsHelp = (): string =>
  sources()
    .map((s) => s.reads)
    .join(', or ');

/** Which sources `--stack` works on. */
const stackHelp = (): string =>
  either(
    sources()
      .filter((s) => s.offers.fields.summary.includes('stack'))
      .map((s) => s.name),
  );

export const LOOKUP_METHODS: readonly { name: LookupMethod; help: string }[] = [
  { name: 'kas', help: 'use /proc/kallsyms' },
  { name: 'none', help: 'print raw addresses' },
];

export const DEFAULT_METRICS_HOST = '127.0.0.1';
/** setTimeout's ceiling; longer durations are waited out in steps. */
const MAX_DURATION_S = 10 * 365 * 24 * 3600;

/** The command line before its filter expressions are parsed: `--filter` and `--ignore-reason` as given. */
export interface CommandLine extends Omit<DropwatchOptions, 'filter'> {
  filterText?: string;
  ignoreReasonText?: string;
}

/**
 * Parses argv (without node and script), all but the filter expressions. Help text goes to `write`; errors throw
 * DropwatchError('E_USAGE'). A filter's syntax is checked after everything else (parseFilters in options.ts).
 */
export function parseCommandLine(args: readonly string[], write: (text: string) => void): CommandLine | 'help' {
  const program = dropwatchProgram();
  if (parseArgs(program, args, write, `dropwatch ${packageVersion()}`) === 'help') return 'help';
  const opts = program.opts<Given>();
  // dropwatch compares prefixes (strncmp), so `-l kallsyms` meant kas; we accept exact names only and say so.
  const listMethods = opts.lmethod === 'list';
  const method = LOOKUP_METHODS.find((m) => m.name === opts.lmethod);
  if (!listMethods && !method) throw new DropwatchError('E_USAGE', `Unknown lookup method ${named(opts.lmethod)}`);
  const choices = sourceChoices();
  if (!choices.includes(opts.backend))
    throw new DropwatchError('E_USAGE', `Unknown backend ${named(opts.backend)} (use ${either(choices)})`);
  if (opts.format !== 'text' && opts.format !== 'json')
    throw new DropwatchError('E_USAGE', `Unknown format ${named(opts.format)} (use text or json)`);
  if (opts.mode !== undefined && opts.mode !== 'summary' && opts.mode !== 'packet')
    throw new DropwatchError('E_USAGE', `Unknown mode ${named(opts.mode)} (use summary or packet)`);
  if (opts.duration !== undefined && !opts.start)
    throw new DropwatchError('E_USAGE', '--duration applies to --start runs only');
  if (opts.timestamp && opts.format === 'json')
    throw new DropwatchError('E_USAGE', '--timestamp is for text output; JSON objects carry a "time" field');
  if (opts.top && (opts.start || opts.format !== 'text' || opts.timestamp))
    throw new DropwatchError(
      'E_USAGE',
      '--top draws its own screen; --start, --format and --timestamp are for line output (use one or the other)',
    );
  return {
    by: parseByOption(opts),
    lookup: method?.name ?? 'kas',
    listMethods,
    backend: opts.backend,
    start: Boolean(opts.start),
    durationMs: opts.duration === undefined ? null : parseDuration(opts.duration),
    alertLimit: opts.alertLimit === undefined ? null : parseCount('--alert-limit', opts.alertLimit),
    mode: opts.mode ?? null,
    timestamp: Boolean(opts.timestamp),
    format: opts.format,
    metrics: opts.metrics === undefined ? null : parseMetricsAddress(opts.metrics),
    ...metricsSeries(opts),
    stack: Boolean(opts.stack),
    top: Boolean(opts.top),
    ...(opts.filter === undefined ? {} : { filterText: opts.filter }),
    ...(opts.ignoreReason === undefined ? {} : { ignoreReasonText: opts.ignoreReason }),
  };
}

/** The options as commander gives them, before they are checked. */
interface Given {
  lmethod: string;
  backend: string;
  start?: true;
  duration?: string;
  alertLimit?: string;
  mode?: string;
  format: string;
  timestamp?: true;
  metrics?: string;
  metricsLabels?: string;
  metricsMaxSeries?: string;
  filter?: string;
  ignoreReason?: string;
  stack?: true;
  top?: true;
  by: string;
}

/**
 * `--by`'s keys; grouping other than by location is for text summary lines, which JSON and --top are not (in packet
 * mode the packets are counted into them).
 */
function parseByOption({ by: text, format, top }: Given): ByKey[] {
  let by: ByKey[];
  try {
    by = parseBy(text);
  } catch (err) {
    if (err instanceof DropwatchError) throw new DropwatchError('E_USAGE', `--by: ${err.message}`);
    throw err;
  }
  if (isDefaultBy(by)) return by;
  if (format === 'json')
    throw new DropwatchError(
      'E_USAGE',
      '--by groups text summary lines; JSON summaries carry every key on each of their places (group those with jq)',
    );
  if (top) throw new DropwatchError('E_USAGE', '--by groups summary lines; --top draws its own screen');
  return by;
}

/** `--metrics-labels` and `--metrics-max-series`, each only with the option it refines. */
function metricsSeries(opts: Given): Pick<DropwatchOptions, 'metricsLabels' | 'metricsMaxSeries'> {
  if (opts.metricsLabels !== undefined && opts.metrics === undefined)
    throw new DropwatchError('E_USAGE', '--metrics-labels applies to --metrics');
  if (opts.metricsMaxSeries !== undefined && opts.metricsLabels === undefined)
    throw new DropwatchError('E_USAGE', '--metrics-max-series applies to --metrics-labels');
  return {
    metricsLabels: opts.metricsLabels === undefined ? [] : parseMetricsLabels(opts.metricsLabels),
    metricsMaxSeries:
      opts.metricsMaxSeries === undefined
        ? DEFAULT_MAX_SERIES
        : parseCount('--metrics-max-series', opts.metricsMaxSeries),
  };
}

/** dropwatch's options, their help and defaults. */
function dropwatchProgram(): Command {
  return new Command('dropwatch')
    .usage('[options]')
    .description(`Watch where the kernel drops packets (${readsHelp()})`)
    .addOption(new Option('-l, --lmethod <method>', 'symbol lookup method: kas, none, or list').default('kas'))
    .addOption(new Option('-b, --backend <backend>', backendHelp()).default('auto'))
    .addOption(
      new Option('-s, --start', 'monitor at once without a prompt; stop on --duration, the limit, SIGINT or SIGTERM'),
    )
    .addOption(new Option('-d, --duration <seconds>', 'with --start: monitor this long, then stop and exit'))
    .addOption(new Option('-n, --alert-limit <n>', 'stop after this many reported drop entries (0: no limit)'))
    .addOption(new Option('-m, --mode <mode>', 'alert mode: summary or packet'))
    .addOption(new Option('-f, --format <format>', 'output: text, or json (one JSON object per line)').default('text'))
    .addOption(new Option('--timestamp', 'start each text drop line with an ISO-8601 UTC time'))
    .addOption(
      new Option(
        '--metrics <[host:]port>',
        `serve Prometheus metrics on /metrics (default host ${DEFAULT_METRICS_HOST})`,
      ),
    )
    .addOption(
      new Option(
        '--metrics-labels <list>',
        'add these labels to dropwatch_drops_total: netns, container, pod, dev (comma-separated)',
      ),
    )
    .addOption(
      new Option(
        '--metrics-max-series <n>',
        `with --metrics-labels: label sets kept before new ones are summed under "other" (default ${DEFAULT_MAX_SERIES})`,
      ),
    )
    .addOption(new Option('--filter <expr>', 'report only drops matching this filter expression'))
    .addOption(new Option('--ignore-reason <list>', 'do not report drops with these reasons (comma-separated)'))
    .addOption(new Option('--stack', `show the kernel call chains behind drops, sampled (${stackHelp()} backend)`))
    .addOption(new Option('--top', 'live view of the drop sites, refreshed every second, in the terminal (q quits)'))
    .addOption(
      new Option('--by <key[,key]>', `group summary lines by ${BY_KEYS.join(', ')} (default: location)`).default(
        'location',
      ),
    );
}

/** Seconds, fractions allowed (`-d 0.5`), more than zero; returns milliseconds. */
export function parseDuration(text: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text))
    throw new DropwatchError('E_USAGE', `invalid duration ${JSON.stringify(text)} (expected seconds, e.g. 10 or 0.5)`);
  const seconds = Number(text);
  if (seconds <= 0 || seconds > MAX_DURATION_S)
    throw new DropwatchError('E_USAGE', `duration must be more than 0 and at most ${MAX_DURATION_S} seconds`);
  return Math.round(seconds * 1000);
}

/** A whole number, in the prompt's words for `set alertlimit` (src/engine/commands.ts) when it is not one or too big. */
function parseCount(name: string, text: string): number {
  if (!/^\d+$/.test(text))
    throw new DropwatchError('E_USAGE', `invalid number for ${name}: ${quote(text)} (expected a whole number)`);
  const value = Number(text);
  if (!Number.isSafeInteger(value))
    throw new DropwatchError('E_USAGE', `${name} must be at most ${Number.MAX_SAFE_INTEGER}, got ${quote(text)}`);
  return value;
}

/** `[HOST:]PORT`: `9469`, `:9469`, `0.0.0.0:9469`, `[::1]:9469`; the host defaults to loopback. */
export function parseMetricsAddress(text: string): MetricsAddress {
  const m = /^(?:(?:\[([0-9A-Fa-f:.%\w]+)\]|([^:[\]\s]*)):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new DropwatchError(
      'E_USAGE',
      `invalid --metrics address ${JSON.stringify(text)} (expected [HOST:]PORT, e.g. :9469)`,
    );
  const host = m[1] ?? (m[2] || DEFAULT_METRICS_HOST);
  return { host, port };
}
