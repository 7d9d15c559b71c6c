// Runs a commander program the way both our programs want it: help to `write`, errors as DropwatchError, never exit.
import { CommanderError, type Command } from 'commander';
import { DropwatchError } from '../errors/index.js';

/**
 * Parses `args` (without node and script); returns 'help' when help or `--version` was shown, else null.
 * `version` is what --version prints (e.g. `dropwatch 0.1.0`).
 */
export function parseArgs(
  program: Command,
  args: readonly string[],
  write: (text: string) => void,
  version?: string,
): 'help' | null {
  if (version !== undefined) program.version(version, '--version', 'print the version and exit');
  program
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: () => {}, outputError: () => {} })
    .allowExcessArguments(false);
  try {
    program.parse(args, { from: 'user' });
    return null;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version')
      return 'help';
    throw new DropwatchError('E_USAGE', err.message.replace(/^error: /, ''), { exitCode: 1 });
  }
}
