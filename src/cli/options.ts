// Command-line parsing for dropwatch: commander configured to report, never to exit, so one handler owns the exit code.
import { Command, CommanderError, Option } from 'commander';
import { DropwatchError } from '../errors/index.js';
import type { BackendName } from '../backend/types.js';

export type LookupMethod = 'kas' | 'none';

export interface DropwatchOptions {
  lookup: LookupMethod;
  /** `-l list`: print the methods and exit. */
  listMethods: boolean;
  backend: BackendName | 'auto';
}

/** dropwatch's own usage line, then ours. */
export const USAGE = 'dropwatch [-l|--lmethod <method | list>] [-b|--backend auto|netdm|tracefs]';

export const LOOKUP_METHODS: readonly { name: LookupMethod; help: string }[] = [
  { name: 'kas', help: 'use /proc/kallsyms' },
  { name: 'none', help: 'print raw addresses' },
];

/** Parses argv (without node and script). Help text goes to `write`; errors throw DropwatchError('E_USAGE'). */
export function parseDropwatchArgs(args: readonly string[], write: (text: string) => void): DropwatchOptions | 'help' {
  const program = new Command('dropwatch')
    .usage('[-l|--lmethod <method | list>] [-b|--backend auto|netdm|tracefs]')
    .description('Watch where the kernel drops packets (NET_DM netlink, or the skb:kfree_skb tracepoint)')
    .addOption(new Option('-l, --lmethod <method>', 'symbol lookup method: kas, none, or list').default('kas'))
    .addOption(
      new Option('-b, --backend <backend>', 'drop source: auto (NET_DM, else tracefs), netdm or tracefs').default('auto'),
    )
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: () => {}, outputError: () => {} })
    .allowExcessArguments(false);
  try {
    program.parse(args as string[], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return 'help';
      throw new DropwatchError('E_USAGE', err.message.replace(/^error: /, ''), { exitCode: 1 });
    }
    throw err;
  }
  const opts = program.opts<{ lmethod: string; backend: string }>();
  // dropwatch compares prefixes (strncmp), so `-l kallsyms` meant kas; we accept exact names only and say so.
  const listMethods = opts.lmethod === 'list';
  const method = LOOKUP_METHODS.find((m) => m.name === opts.lmethod);
  if (!listMethods && !method) throw new DropwatchError('E_USAGE', `Unknown lookup method ${opts.lmethod}`);
  if (!['auto', 'netdm', 'tracefs'].includes(opts.backend))
    throw new DropwatchError('E_USAGE', `Unknown backend ${opts.backend} (use auto, netdm or tracefs)`);
  return {
    lookup: method?.name ?? 'kas',
    listMethods,
    backend: opts.backend as DropwatchOptions['backend'],
  };
}
