// A dropwatch run once its command line is parsed: opens a backend and runs the REPL, the live view or an unattended
// (-s) run. Loaded only when a run is asked for, so --help and --version load none of this.
import { provides, type AlertMode, type Backend } from '../backend/types.js';
import { CapabilityWords } from '../backend/words.js';
import { DropAggregator } from '../aggregate/index.js';
import type { FilterControl } from '../engine/filter.js';
import { openFilterControl, refuseFilter } from '../engine/lazy-filter.js';
import { isDefaultBy, unknownKeys, type ByKey } from '../aggregate/keys.js';
import { Session } from '../engine/session.js';
import type { SessionOutput } from '../engine/types.js';
import { DropwatchError } from '../errors/index.js';
import { formatUntakenLine } from '../output/format.js';
import { chooseSink, type Sink } from '../output/sink.js';
import {
  BACKLOG_LIMIT,
  guardStdout,
  PIPE_BUF,
  promptOutput,
  printOnly,
  realTimers,
  reportsOnly,
  whileTaken,
  type StdoutGuard,
} from '../output/stdout.js';
import { loadSymbols, type Symbols } from '../output/symbols.js';
import { packageVersion } from '../process/version.js';
import { createRepl } from '../repl/index.js';
import { openBackend, sources } from '../sources/index.js';
import type { TopResult } from '../top/run.js';
import { LOOKUP_METHODS, type CommandLine, type DropwatchOptions } from './argv.js';
import type { CliIO } from './io.js';
import { hostNetns, namesPackets, needsNames, openWorkloadNames, RunWorkloads } from './workloads.js';

const processExit = (fn: () => void): (() => void) => {
  process.once('exit', fn);
  return () => process.off('exit', fn);
};

/** A parsed command line (not help or the version) run to its exit code; expected errors are thrown. */
export async function runCommandLine(line: CommandLine, io: CliIO): Promise<number> {
  const complain = (text: string) => io.stderr.write(`${text}\n`);
  const options = await withFilters(line);
  if (options.top) {
    // Before the backend opens, so a run without a terminal leaves the kernel untouched.
    const { terminalRefusal } = await import('../top/terminal.js');
    const refusal = terminalRefusal(io, '--top');
    if (refusal) throw refusal;
    // The view's library takes a while to load: it loads while the backend opens and monitoring starts.
    void loadView().catch(() => {});
  }
  if (options.listMethods) {
    const lines = ['Available lookup methods:', ...LOOKUP_METHODS.map((m) => `${m.name} - ${m.help}`)];
    return await printOnly(io.stdout, lines.map((l) => `${l}\n`).join(''));
  }
  const backend = await openBackend(options.backend, { notice: complain, stack: options.stack });
  const stdout = guardStdout(io.stdout, io.watchStdout, BACKLOG_LIMIT, io.stdoutIsPipe ? PIPE_BUF : null);
  let code: number;
  try {
    code = await runWithBackend(options, backend, io, stdout);
  } finally {
    try {
      await backend.close();
    } finally {
      stdout.release();
    }
  }
  // The process exits right after we return: a slow reader still gets what was written, a stalled one a count.
  const untaken = await stdout.settle(io.timers, io.now);
  if (untaken > 0) complain(formatUntakenLine(untaken));
  await whileTaken(io.stderr, io.timers, io.now);
  return code;
}

/** The command line with its filters parsed; the filter language loads only for a run that gives one. */
async function withFilters(line: CommandLine): Promise<DropwatchOptions> {
  const { filterText, ignoreReasonText, ...rest } = line;
  if (filterText === undefined && ignoreReasonText === undefined) return { ...rest, filter: null };
  return (await import('./options.js')).withFilters(line);
}

let viewModule: Promise<typeof import('../top/run.js')> | null = null;
/** The live view and its library, imported once, when asked for (`--top`, or `top` at the prompt). */
function loadView(): Promise<typeof import('../top/run.js')> {
  // React's development build checks every render and is several times slower; a program runs the production one.
  process.env.NODE_ENV ??= 'production';
  return (viewModule ??= import('../top/run.js'));
}

/** Everything a run is made of once its backend is open. */
interface Run {
  options: DropwatchOptions;
  backend: Backend;
  io: CliIO;
  output: SessionOutput;
  symbols: Symbols;
  filter: FilterControl;
  workloads: RunWorkloads;
}

async function runWithBackend(
  options: DropwatchOptions,
  backend: Backend,
  io: CliIO,
  stdout: StdoutGuard,
): Promise<number> {
  let sink: Sink | null = null;
  const workloads = new RunWorkloads(io.workloadNames ?? openWorkloadNames);
  try {
    // A flow or workload field the run's mode cannot know is refused first, and so is a filter too long for the
    // kernel's filter that only the kernel could test in that mode: one line, nothing started or loaded.
    await refuseFilter(backend, options.filter, options.mode, sources());
    await requireKnownKeys(backend, options.by, options.mode);
    await requirePlaces(backend, options);
    const repl = options.start || options.top ? null : createRepl(replOptions(options, io));
    // JSON at a prompt off a terminal sends the chatter to stderr: stdout holds only reports, written by the guard.
    const output = repl
      ? promptOutput(repl.output, stdout, options.format === 'json' && !io.stdout.isTTY)
      : reportsOnly(io.stderr, stdout);
    const symbols = loadSymbols(
      options.lookup,
      (l) => output.message(l),
      (l) => output.error(l),
      io.kallsymsPath,
    );
    const filter = await openFilterControl(backend, symbols, options.filter, workloads, sources());
    const run: Run = { options, backend, io, output, symbols, filter, workloads };
    await applyOptions(run);
    // JSON names every count's workload; --by and metrics labels name lines and series by it, -m packet text its
    // blocks. A filter on names made them already; the live view makes them when it opens.
    const packetNames = namesPackets(options, backend.capabilities);
    if (needsNames(options) || (packetNames && options.mode === 'packet')) await workloads.need();
    const names = workloads.current();
    let session: Session | null = null;
    const top = (asked: '--top' | 'top') => showTop(run, session!, asked);
    sink = await chooseSink(options, {
      backend,
      sources: sources(),
      symbols,
      now: io.now ?? Date.now,
      data: (line) => output.data(line),
      colour: Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined,
      monitoring: () => session?.monitoring ?? false,
      version: packageVersion(),
      workloads,
      ...(packetNames ? { hostNetns: (io.hostNetns ?? hostNetns)() } : {}),
      ...(names ? { workload: names } : {}),
    });
    session = newSession(run, sink, repl ? () => repl.handOver(() => top('top')).then(() => {}) : undefined);
    for (const line of await sink.open()) io.stderr.write(`${line}\n`);
    let code: number;
    if (repl) {
      stdout.onClosed(() => repl.requestExit(0));
      code = await repl.run(session);
    } else if (options.top) {
      code = (await top('--top')) === 'quit' ? 0 : 1;
    } else {
      code = await runUnattended(session, options, io, stdout);
    }
    // Monitoring has stopped by now; the failed write is the run's outcome, told by the one handler.
    if (stdout.failure) throw stdout.failure;
    return code;
  } finally {
    workloads.close();
    await sink?.close();
  }
}

/**
 * Refuses --by keys the backend does not know in the run's mode (in packet mode the packets are counted into lines):
 * one line naming the sources, or the mode, that do.
 */
async function requireKnownKeys(backend: Backend, by: readonly ByKey[], asked: AlertMode | null): Promise<void> {
  if (isDefaultBy(by)) return;
  // A mode the source lacks is refused later, in its own words.
  if (asked && !backend.capabilities.modes.includes(asked)) return;
  const mode = asked ?? (await backend.getConfig()).alertMode;
  const unknown = unknownKeys(by, backend.capabilities.fields[mode]);
  if (unknown.length === 0) return;
  const words = new CapabilityWords({ name: backend.name, capabilities: backend.capabilities, sources: sources() });
  throw new DropwatchError('E_UNSUPPORTED', `--by: ${words.notInMode(unknown, mode)}`);
}

/** Workload labels come from where drops happen: refused, in one line, on a source or mode that does not say. */
async function requirePlaces(backend: Backend, options: DropwatchOptions): Promise<void> {
  if (options.metricsLabels.length === 0) return;
  // A mode the source lacks is refused later, in its own words.
  if (options.mode && !backend.capabilities.modes.includes(options.mode)) return;
  const mode = options.mode ?? (await backend.getConfig()).alertMode;
  if (provides(backend.capabilities, mode, 'device')) return;
  const words = new CapabilityWords({ name: backend.name, capabilities: backend.capabilities, sources: sources() });
  throw new DropwatchError('E_UNSUPPORTED', `--metrics-labels: ${words.noPlaces(mode)}`);
}

/** The options that reach the backend before monitoring: the filter, call chains, the alert mode; refused in one line. */
async function applyOptions({ options, backend, output, filter }: Run): Promise<void> {
  const words = new CapabilityWords({ name: backend.name, capabilities: backend.capabilities, sources: sources() });
  if (options.filter) {
    const { reasons } = backend.capabilities;
    const { unknownReasons } = await import('../filter/index.js');
    const unknown = reasons ? unknownReasons(options.filter, reasons) : [];
    if (unknown.length > 0)
      output.error(`dropwatch: this kernel has no drop reason ${unknown.join(', ')}; check the spelling`);
    // For the mode -m asks for, which is set below: the filter must be testable in it.
    output.message(await filter.applyExpr(null, options.mode));
  }
  if (options.stack && !backend.capabilities.fields.summary.includes('stack'))
    throw new DropwatchError('E_UNSUPPORTED', `--stack: ${words.noStacks()}`);
  if (options.mode) {
    if (!backend.capabilities.modes.includes(options.mode))
      throw new DropwatchError('E_UNSUPPORTED', words.noMode(options.mode));
    await backend.setConfig({ alertMode: options.mode });
  }
}

function newSession(run: Run, sink: Sink, view: (() => Promise<void>) | undefined): Session {
  const { options, backend, output, symbols, filter, workloads } = run;
  return new Session({
    filter: filter.compiler,
    predicate: filter.predicate,
    backend,
    sources: sources(),
    renderer: sink.renderer,
    aggregator: new DropAggregator(),
    observer: sink.observer,
    output,
    clock: { setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as NodeJS.Timeout) },
    ready: () => symbols.ready(),
    ...(options.alertLimit === null ? {} : { alertLimit: options.alertLimit }),
    stack: options.stack,
    ...(view ? { view } : {}),
    by: options.by,
    workloads,
    ...(options.format === 'json'
      ? { noGrouping: 'JSON summaries carry every key on each of their places (group those with jq)' }
      : {}),
  });
}

/** The live view over the session, until the user leaves it. */
async function showTop(run: Run, session: Session, asked: '--top' | 'top'): Promise<TopResult> {
  const { backend, symbols, filter, io, output, workloads } = run;
  const { runTop } = await loadView();
  // Its rows can be grouped by workload where the source says where drops happen.
  const names = backend.capabilities.fields.summary.includes('netns') ? await workloads.need() : null;
  return runTop({
    session,
    backend,
    lookup: (pc) => symbols.lookup(pc),
    filter: { apply: (text) => filter.compiler.apply(text), describe: () => filter.describe() },
    io: { ...io, now: io.now ?? Date.now, onExit: io.onExit ?? processExit },
    output,
    asked,
    ...(names ? { workloads: names } : {}),
  });
}

function replOptions(options: DropwatchOptions, io: CliIO): Parameters<typeof createRepl>[0] {
  return {
    input: io.stdin,
    output: io.stdout,
    errorOutput: io.stderr,
    interactive: Boolean(io.stdin.isTTY),
    signals: io.signals,
    // JSON Lines own stdout: the prompt's chatter goes to stderr.
    ...(options.format === 'json' ? { messageOutput: io.stderr } : {}),
  };
}

/**
 * `-s`: start monitoring at once, then stop on the first of --duration, the alert limit, SIGINT/SIGTERM/SIGHUP or a
 * closed stdout. Stopping flushes what the kernel still held. Exit 0, or 1 when monitoring could not start.
 */
async function runUnattended(
  session: Session,
  options: DropwatchOptions,
  io: CliIO,
  stdout: StdoutGuard,
): Promise<number> {
  const timers = io.timers ?? realTimers;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const onSignal = () => finish();
  io.signals.on('SIGINT', onSignal);
  io.signals.on('SIGTERM', onSignal);
  io.signals.on('SIGHUP', onSignal);
  stdout.onClosed(onSignal);
  let timer: unknown = null;
  try {
    await session.run({ name: 'start' });
    // Session has already said why (kernel refusal, privilege...).
    if (!session.monitoring) return 1;
    void session.whenIdle().then(finish);
    if (options.durationMs !== null) {
      // setTimeout caps at ~24.8 days; longer durations are waited out in steps.
      let left = options.durationMs;
      const arm = () => {
        const step = Math.min(left, 2 ** 31 - 1);
        left -= step;
        timer = timers.setTimeout(() => (left > 0 ? arm() : finish()), step);
      };
      arm();
    }
    await finished;
    await session.stop('signal');
    return 0;
  } finally {
    if (timer !== null) timers.clearTimeout(timer);
    io.signals.off('SIGINT', onSignal);
    io.signals.off('SIGTERM', onSignal);
    io.signals.off('SIGHUP', onSignal);
  }
}

export { DropwatchError };
