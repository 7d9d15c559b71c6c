// Whether the live view can run here, and the one line to say when it cannot; small, so the CLI can check it
// before opening a backend without loading the terminal UI library.
import { DropwatchError } from '../errors/index.js';

export interface TerminalStreams {
  stdin: { isTTY?: boolean; setRawMode?: unknown };
  stdout: { isTTY?: boolean };
}

/** Keys need a terminal on stdin and the screen one on stdout. */
export function isTerminal(io: TerminalStreams): boolean {
  return Boolean(io.stdin.isTTY && io.stdout.isTTY) && typeof io.stdin.setRawMode === 'function';
}

/** The error for a run without a terminal, saying what to use instead. */
export function noTerminal(asked: '--top' | 'top'): DropwatchError {
  return new DropwatchError(
    'E_NO_TTY',
    asked === '--top'
      ? '--top needs a terminal; for a log or a pipe use -s (-s -f json for JSON Lines)'
      : 'top needs a terminal; use start to print drop lines instead',
  );
}
