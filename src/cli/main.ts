// The process shell for bin/dropwatch: real streams and signals in, exit code out; unexpected errors keep their stack.
import { createReadStream, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { dropwatchMain } from './dropwatch.js';
import { watchHangup } from '../native/hangup.js';
import type { SignalName, SignalSource } from '../repl/index.js';

const SIGNALS: readonly SignalName[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * The process's stop signals, caught from the first moment. The REPL and -s runs listen only once the backend is
 * open, and by then the kernel already holds our state (a tracefs instance, NET_DM monitoring): a signal in between
 * would kill us by its default action, skipping every cleanup. One that arrives while nobody listens is held and
 * given to the first listener for it, so it ends the run the same clean way as one that comes later.
 */
function caughtSignals(): SignalSource {
  const listeners = new Map<SignalName, Set<() => void>>(SIGNALS.map((s) => [s, new Set()]));
  const held = new Set<SignalName>();
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      const current = [...listeners.get(signal)!];
      // Asked twice before anyone listened (start-up stuck, e.g. on the kernel): leave; the exit hooks still clean up.
      if (current.length === 0 && held.has(signal)) process.exit(0);
      if (current.length === 0) held.add(signal);
      for (const listener of current) listener();
    });
  }
  return {
    on(signal, listener) {
      listeners.get(signal)!.add(listener);
      if (held.delete(signal)) {
        // After the caller has finished registering (it may be adding its other handlers right after this one).
        setImmediate(() => {
          if (listeners.get(signal)!.has(listener)) listener();
        });
      }
    },
    off(signal, listener) {
      listeners.get(signal)!.delete(listener);
    },
  };
}

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

export async function runDropwatchProcess(): Promise<void> {
  const signals = caughtSignals();
  let code: number;
  try {
    code = await dropwatchMain(process.argv.slice(2), {
      stdin: standardInput(),
      watchStdout: (onGone) => watchHangup(1, onGone),
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
