// The process shell for bin/dwdump: real streams, signals and exit hook in, exit code out; unexpected errors keep
// their stack.
import { dwdumpMain } from './dwdump.js';
import { caughtSignals } from '../process/signals.js';
import { watchHangup } from '../native/hangup.js';
import { streamWrite } from '../output/stdout.js';

export async function runDwdumpProcess(): Promise<void> {
  // Caught before anything else: a SIGTERM just after start ends the capture cleanly (a valid pcap, exit 0), not by
  // the signal's default action with the file half made.
  const signals = caughtSignals();
  let code: number;
  try {
    code = await dwdumpMain(process.argv.slice(2), {
      // process.stdout is touched only for text output: creating it would switch a piped fd 1 to non-blocking,
      // and while capturing, fd 1 is the pcap, written directly.
      out: (text, done) => streamWrite(process.stdout)(text, done),
      err: (text) => process.stderr.write(text),
      stdoutFd: 1,
      signals,
      watchStdout: (onGone) => watchHangup(1, onGone),
      exitHooks: process,
    });
  } catch (err) {
    // A bug, not an expected error: show everything so it can be reported.
    process.stderr.write(
      `dwdump: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    code = 70;
  }
  // Every socket and file was released above; stdout/stderr are synchronous for files and pipes on Linux.
  process.exit(code);
}
