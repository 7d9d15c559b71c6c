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

export interface TerminalEnv extends TerminalStreams {
  env: Readonly<Record<string, string | undefined>>;
}

/** Whether the locale's character set is UTF-8: LC_ALL, else LC_CTYPE, else LANG, as setlocale reads them. */
export function utf8Locale(env: Readonly<Record<string, string | undefined>>): boolean {
  const name = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(name);
}

/**
 * Why the live view cannot run here, or null: no terminal, or one that says it cannot move the cursor (TERM=dumb,
 * as Emacs's shell and some CI consoles set it), on which the view would be a scroll of redrawn frames.
 */
export function terminalRefusal(io: TerminalEnv, asked: '--top' | 'top'): DropwatchError | null {
  if (!isTerminal(io)) return noTerminal(asked);
  if (io.env.TERM !== 'dumb') return null;
  return new DropwatchError(
    'E_NO_TTY',
    `${asked} needs a terminal that can move the cursor (TERM=dumb); ${instead(asked)}`,
  );
}

const instead = (asked: '--top' | 'top'): string =>
  asked === '--top'
    ? 'for a log or a pipe use -s (-s -f json for JSON Lines)'
    : 'use start to print drop lines instead';

/** The error for a run without a terminal, saying what to use instead. */
export function noTerminal(asked: '--top' | 'top'): DropwatchError {
  return new DropwatchError('E_NO_TTY', `${asked} needs a terminal; ${instead(asked)}`);
}
