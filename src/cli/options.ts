// Command-line parsing for dropwatch: the commander part (argv.ts) plus the filter expressions, parsed to an Expr.
import { DropwatchError } from '../errors/index.js';
import { conjoin, FilterSyntaxError, ignoreReasons, parse, type Expr } from '../filter/index.js';
import { parseCommandLine, type CommandLine, type DropwatchOptions } from './argv.js';

export {
  DEFAULT_METRICS_HOST,
  LOOKUP_METHODS,
  usage,
  parseCommandLine,
  parseDuration,
  parseMetricsAddress,
  type CommandLine,
  type DropwatchOptions,
  type LookupMethod,
  type MetricsAddress,
  type OutputFormat,
} from './argv.js';

/** Parses argv (without node and script). Help text goes to `write`; errors throw DropwatchError('E_USAGE'). */
export function parseDropwatchArgs(args: readonly string[], write: (text: string) => void): DropwatchOptions | 'help' {
  const line = parseCommandLine(args, write);
  return line === 'help' ? line : withFilters(line);
}

/** The command line with its filter options parsed into one expression (E_BAD_INPUT for bad syntax). */
export function withFilters(line: CommandLine): DropwatchOptions {
  const { filterText, ignoreReasonText, ...rest } = line;
  return { ...rest, filter: parseFilters(filterText, ignoreReasonText) };
}

/** Both filter options as one expression; a syntax error becomes one line naming the option and the column. */
export function parseFilters(filter: string | undefined, ignore: string | undefined): Expr | null {
  try {
    return conjoin(ignore === undefined ? null : ignoreReasons(ignore), filter === undefined ? null : parse(filter));
  } catch (err) {
    if (err instanceof FilterSyntaxError) throw new DropwatchError('E_BAD_INPUT', `--${err.message}`, { exitCode: 1 });
    throw err;
  }
}
