// The process shell for bin/dropwatch: real streams and signals in, exit code out; unexpected errors keep their stack.
import { createReadStream, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { dropwatchMain } from './dropwatch.js';
import { watchHangup } from '../native/hangup.js';
import { caughtSignals } from '../process/signals.js';

/**
 * Standard input as a stream. Node hands a directory on fd 0 over as empty input, which would read as end of input;
 * reading the descriptor itself fails with EISDIR, which the REPL reports.
 */
function standardInput(): Readable & { isTTY?: boolean } {
  let directory = false;
  try {
    directory = fstatSync(0).isDirectory();
  } catch {
    // No fd 0 at all: process.stdin copes with that.
  }
  return directory ? createReadStream('', { fd: 0, autoClose: false }) : process.stdin;
}

/** Whether fd 1 is a pipe or a socket, where a write larger than PIPE_BUF may be taken in part. */
function stdoutIsPipe(): boolean {
  try {
    const stat = fstatSync(1);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

export async function runDropwatchProcess(): Promise<void> {
  const signals = caughtSignals();
  let code: number;
  try {
    let stdin: ReturnType<typeof standardInput> | undefined;
    code = await dropwatchMain(process.argv.slice(2), {
      // Made when first read: --help and --version never read it, and making it takes a few milliseconds.
      get stdin() {
        return (stdin ??= standardInput());
      },
      watchStdout: (onGone) => watchHangup(1, onGone),
      stdoutIsPipe: stdoutIsPipe(),
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      signals,
    });
  } catch (err) {
    // A bug, not an expected error: show everything so it can be reported.
    process.stderr.write(
      `dropwatch: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    code = 70;
  }
  // stdin, workers or sockets may still hold the loop; every resource was released above, so leave now.
  process.exit(code);
}
