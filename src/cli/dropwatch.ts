// The `dropwatch` program: parses options, opens a backend, and runs the REPL; the one place that decides exit codes.
import type { Readable, Writable } from 'node:stream';
import { DropwatchError, isExpected } from '../errors/index.js';
import { createRepl, Session, type SignalSource } from '../repl/index.js';
import { LOOKUP_METHODS, USAGE, parseDropwatchArgs } from './options.js';
import { openBackend } from './backend.js';
import { buildTextRenderer, loadSymbols } from './render.js';
import { DropAggregator } from '../aggregate/index.js';
import { createFilterControl } from './filter.js';

export interface CliIO {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
  env: Readonly<Record<string, string | undefined>>;
  signals: SignalSource;
  kallsymsPath?: string;
}

/** Runs dropwatch with argv (without node and script); resolves to the exit code. Prints every expected error as one line. */
export async function dropwatchMain(args: readonly string[], io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const complain = (line: string) => io.stderr.write(`${line}\n`);
  try {
    const options = parseDropwatchArgs(args, (text) => io.stdout.write(text));
    if (options === 'help') return 0;
    if (options.listMethods) {
      say('Available lookup methods:');
      for (const m of LOOKUP_METHODS) say(`${m.name} - ${m.help}`);
      return 0;
    }
    const interactive = Boolean(io.stdin.isTTY);
    const backend = await openBackend(options.backend, { notice: complain });
    try {
      const repl = createRepl({ input: io.stdin, output: io.stdout, errorOutput: io.stderr, interactive, signals: io.signals });
      const symbols = loadSymbols(options.lookup, say, (line) => repl.output.error(line), io.kallsymsPath);
      const colour = Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined;
      const filter = createFilterControl(backend, symbols);
      const session = new Session({
        filter: filter.compiler,
        predicate: filter.predicate,
        backend,
        renderer: buildTextRenderer({ symbols, colour, capabilities: backend.capabilities }),
        aggregator: new DropAggregator(),
        output: repl.output,
        clock: { setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as NodeJS.Timeout) },
        ready: () => symbols.ready(),
      });
      const onPipeError = (err: NodeJS.ErrnoException) => {
        // The reader went away (`| head`): end quietly, restoring the kernel's state.
        if (err.code === 'EPIPE') repl.requestExit(0);
      };
      io.stdout.on('error', onPipeError);
      try {
        return await repl.run(session);
      } finally {
        io.stdout.off('error', onPipeError);
      }
    } finally {
      await backend.close();
    }
  } catch (err) {
    if (!isExpected(err)) throw err;
    complain(`dropwatch: ${err.message}`);
    if (err.code === 'E_USAGE') complain(`Usage: ${USAGE}`);
    return err.exitCode;
  }
}

export { DropwatchError };
