// The `dropwatch` program: parses options, opens a backend, and runs the REPL or an unattended (-s) run; the one
// place that decides exit codes.
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { Backend, BackendName } from '../backend/types.js';
import { DropwatchError, isExpected } from '../errors/index.js';
import {
  createRepl,
  Session,
  type DropObserver,
  type Renderer,
  type SessionOutput,
  type SignalSource,
} from '../repl/index.js';
// Start-up time is mostly module loading (~1-1.5 ms per ES module here): what only some runs use (the filter
// language, JSON, metrics, chalk) is imported when a run asks for it, and modules come from their own files rather
// than their package's index.js.
import { LOOKUP_METHODS, USAGE, parseCommandLine, type DropwatchOptions } from './argv.js';
import { openBackend } from './backend.js';
import { buildTextRenderer, loadColour, loadSymbols, type Symbols } from './render.js';
import { DropAggregator } from '../aggregate/index.js';
import { createFilterControl } from './filter.js';
import { TracefsBackend } from '../tracefs/backend.js';
import type * as Json from '../output/json.js';
import type { DropMetrics, MetricsServer } from '../metrics/index.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface CliIO {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
  env: Readonly<Record<string, string | undefined>>;
  signals: SignalSource;
  kallsymsPath?: string;
  /** Wall clock for report times (ms since the epoch); default Date.now. */
  now?: () => number;
  /** For --duration; default the global timers. */
  timers?: Timers;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Runs dropwatch with argv (without node and script); resolves to the exit code. Prints every expected error as one line. */
export async function dropwatchMain(args: readonly string[], io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const complain = (line: string) => io.stderr.write(`${line}\n`);
  // A closed stderr (`2>&1 | head`) must not crash us; its lines are simply lost.
  const ignoreStderrError = () => {};
  io.stderr.on('error', ignoreStderrError);
  try {
    const line = parseCommandLine(args, (text) => io.stdout.write(text));
    if (line === 'help') return 0;
    const options: DropwatchOptions =
      line.filterText === undefined && line.ignoreReasonText === undefined
        ? { ...line, filter: null }
        : (await import('./options.js')).withFilters(line);
    if (options.listMethods) {
      say('Available lookup methods:');
      for (const m of LOOKUP_METHODS) say(`${m.name} - ${m.help}`);
      return 0;
    }
    const backend = await openBackend(options.backend, { notice: complain });
    let code: number;
    try {
      code = await runWithBackend(options, backend, io);
    } finally {
      await backend.close();
    }
    // The process exits right after we return: a slow reader must still get every line already written.
    await Promise.all([flushed(io.stdout, io.timers), flushed(io.stderr, io.timers)]);
    return code;
  } catch (err) {
    if (!isExpected(err)) throw err;
    complain(`dropwatch: ${err.message}`);
    if (err.code === 'E_USAGE') complain(`Usage: ${USAGE}`);
    return err.exitCode;
  } finally {
    io.stderr.off('error', ignoreStderrError);
  }
}

/** Waits until what was written to `stream` has reached the OS, or at most 10 s (a reader that never reads). */
function flushed(stream: Writable, timers: Timers = realTimers): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = timers.setTimeout(resolve, 10_000);
    // Write callbacks run in order, so this one runs once everything before it is out.
    stream.write('', () => {
      timers.clearTimeout(timer);
      resolve();
    });
  });
}

async function runWithBackend(options: DropwatchOptions, backend: Backend, io: CliIO): Promise<number> {
  const now = io.now ?? Date.now;
  const json = options.format === 'json';
  // With -s or JSON, stdout carries drop reports only; everything else goes to stderr.
  const messageStream = json || options.start ? io.stderr : io.stdout;

  let stdoutOpen = true;
  let onStdoutClosed: () => void = () => {};
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    stdoutOpen = false;
    // The reader went away (`| head`): end quietly, restoring the kernel's state. Other errors end the run too.
    if (err.code !== 'EPIPE') io.stderr.write(`dropwatch: standard output: ${err.message}\n`);
    onStdoutClosed();
  };
  io.stdout.on('error', onStdoutError);

  let metricsServer: MetricsServer | null = null;
  try {
    const repl = options.start
      ? null
      : createRepl({
          input: io.stdin,
          output: io.stdout,
          errorOutput: io.stderr,
          interactive: Boolean(io.stdin.isTTY),
          signals: io.signals,
          ...(json ? { messageOutput: io.stderr } : {}),
        });
    const output: SessionOutput = repl
      ? repl.output
      : {
          data: (line) => {
            if (stdoutOpen) io.stdout.write(`${line}\n`);
          },
          message: (line) => messageStream.write(`${line}\n`),
          error: (line) => io.stderr.write(`${line}\n`),
        };
    const symbols = loadSymbols(
      options.lookup,
      (l) => output.message(l),
      (l) => output.error(l),
      io.kallsymsPath,
    );
    const filter = createFilterControl(backend, symbols, options.filter);
    if (options.filter) {
      if (backend instanceof TracefsBackend) {
        const { unknownReasons } = await import('../filter/index.js');
        const unknown = unknownReasons(options.filter, backend.layout.reasons);
        if (unknown.length > 0)
          output.error(`dropwatch: this kernel has no drop reason ${unknown.join(', ')}; check the spelling`);
      }
      output.message(await filter.applyExpr(null));
    }
    if (options.mode) {
      if (options.mode === 'packet' && !backend.capabilities.packetMode)
        throw new DropwatchError('E_UNSUPPORTED', `packet mode is not available on the ${backend.name} backend`);
      await backend.setConfig({ alertMode: options.mode });
    }

    let session: Session | null = null;
    // prom-client is the heaviest import we have: load it only when metrics are asked for, to keep startup quick.
    const metricsModule = options.metrics ? await import('../metrics/index.js') : null;
    const metrics = metricsModule
      ? metricsModule.createDropMetrics({
          backend: backend.name,
          lookup: (pc) => symbols.lookup(pc),
          monitoring: () => session?.monitoring ?? false,
          version: packageVersion(),
        })
      : null;
    const emit = json ? (line: string) => output.data(line) : null;
    const jsonModule = json ? await import('../output/json.js') : null;
    const colour = !json && Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined && (await loadColour());
    session = new Session({
      filter: filter.compiler,
      predicate: filter.predicate,
      backend,
      renderer: buildRenderer(options, backend, symbols, colour, jsonModule, now),
      aggregator: new DropAggregator(),
      observer: observe(metrics, emit && jsonModule ? { emit, json: jsonModule } : null, backend.name, now),
      output,
      clock: { setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as NodeJS.Timeout) },
      ready: () => symbols.ready(),
      ...(options.alertLimit === null ? {} : { alertLimit: options.alertLimit }),
    });
    if (options.metrics && metrics && metricsModule) {
      metricsServer = await metricsModule.serveMetrics(metrics.registry, options.metrics.host, options.metrics.port);
      io.stderr.write(`Serving Prometheus metrics on ${metricsServer.url}\n`);
    }

    if (repl) {
      onStdoutClosed = () => repl.requestExit(0);
      return await repl.run(session);
    }
    return await runUnattended(session, options, io, (fn) => (onStdoutClosed = fn));
  } finally {
    io.stdout.off('error', onStdoutError);
    // Writes queued to a dead pipe may still report; keep them from becoming an uncaught 'error'.
    if (!stdoutOpen) io.stdout.on('error', () => {});
    await metricsServer?.close();
  }
}

/**
 * `-s`: start monitoring at once, then stop on the first of --duration, the alert limit, SIGINT/SIGTERM/SIGHUP or a
 * closed stdout. Stopping flushes what the kernel still held. Exit 0, or 1 when monitoring could not start.
 */
async function runUnattended(
  session: Session,
  options: DropwatchOptions,
  io: CliIO,
  setOnStdoutClosed: (fn: () => void) => void,
): Promise<number> {
  const timers = io.timers ?? realTimers;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const onSignal = () => finish();
  io.signals.on('SIGINT', onSignal);
  io.signals.on('SIGTERM', onSignal);
  io.signals.on('SIGHUP', onSignal);
  setOnStdoutClosed(onSignal);
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

/** Metrics count every drop that passed the filter; JSON mode also reports losses and the cap's overflow as objects. */
function observe(
  metrics: DropMetrics | null,
  jsonOut: { emit: (line: string) => void; json: typeof Json } | null,
  backend: BackendName,
  now: () => number,
): DropObserver | undefined {
  if (!metrics && !jsonOut) return undefined;
  return {
    drops: (entries) => metrics?.countSummary(entries),
    packet: (packet) => metrics?.countPacket(packet),
    lost: (count, where) => {
      metrics?.countLost(count, where);
      if (jsonOut) jsonOut.emit(jsonOut.json.jsonLine(jsonOut.json.lostJson(count, where, now(), backend)));
    },
    overflow: (overflow) => {
      if (jsonOut) jsonOut.emit(jsonOut.json.jsonLine(jsonOut.json.overflowJson(overflow, now(), backend)));
    },
  };
}

/** json is the loaded JSON module for --format json, else null; colour is false or the chalk to colour with. */
function buildRenderer(
  options: DropwatchOptions,
  backend: Backend,
  symbols: Symbols,
  colour: Parameters<typeof buildTextRenderer>[0]['colour'],
  json: typeof Json | null,
  now: () => number,
): Renderer {
  const text = buildTextRenderer({ symbols, colour, capabilities: backend.capabilities });
  let renderer: Renderer = text;
  if (json) {
    const { jsonLine, packetJson, summaryJson } = json;
    renderer = {
      ...text,
      summary: (entry) =>
        jsonLine(summaryJson(entry, entry.pc === 0n ? null : symbols.lookup(entry.pc), now(), backend.name)),
      packet: (p) => [
        jsonLine(
          packetJson(
            p,
            p.symbol === undefined && p.pc !== undefined ? symbols.lookup(p.pc) : null,
            now(),
            backend.name,
          ),
        ),
      ],
    };
  } else if (options.timestamp) {
    const stamp = () => new Date(now()).toISOString();
    renderer = {
      ...text,
      summary: (entry) => `${stamp()} ${text.summary(entry)}`,
      // Every line of a packet block, so `grep` keeps the time with each field; the blank separator stays blank.
      packet: (p) => {
        const t = stamp();
        return text.packet(p).map((line) => (line === '' ? line : `${t} ${line}`));
      },
    };
  }
  return renderer;
}

let cachedVersion: string | undefined;
function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      // dist/src/cli/dropwatch.js → package.json at the package root.
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      cachedVersion = pkg.version ?? 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}

export { DropwatchError };
