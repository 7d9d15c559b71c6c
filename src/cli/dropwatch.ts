// The `dropwatch` program: parses options, then opens a backend and runs the REPL or an unattended (-s) run
// (run.ts, loaded only then); the one place that decides exit codes.
import { DropwatchError, isExpected } from '../errors/index.js';
import { printOnly, type Timers } from '../output/stdout.js';
import type { CliIO } from './io.js';
import { usage, parseCommandLine } from './argv.js';

export type { CliIO, Timers };

/** Runs dropwatch with argv (without node and script); resolves to the exit code. Prints every expected error as one line. */
export async function dropwatchMain(args: readonly string[], io: CliIO): Promise<number> {
  const complain = (line: string) => io.stderr.write(`${line}\n`);
  // A closed stderr (`2>&1 | head`) must not crash us; its lines are simply lost.
  const ignoreStderrError = () => {};
  io.stderr.on('error', ignoreStderrError);
  try {
    let help = '';
    const line = parseCommandLine(args, (text) => (help += text));
    if (line === 'help') return await printOnly(io.stdout, help);
    // The run's machinery loads only now: printing the help or the version needs none of it.
    const { runCommandLine } = await import('./run.js');
    return await runCommandLine(line, io);
  } catch (err) {
    if (!isExpected(err)) throw err;
    complain(`dropwatch: ${err.message}`);
    if (err.code === 'E_USAGE') complain(`Usage: ${usage()}`);
    return err.exitCode;
  } finally {
    io.stderr.off('error', ignoreStderrError);
  }
}

export { DropwatchError };
