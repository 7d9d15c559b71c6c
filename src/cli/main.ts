// The process shell for bin/dropwatch: real streams and signals in, exit code out; unexpected errors keep their stack.
import { dropwatchMain } from './dropwatch.js';

export async function runDropwatchProcess(): Promise<void> {
  let code: number;
  try {
    code = await dropwatchMain(process.argv.slice(2), {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      signals: process,
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
