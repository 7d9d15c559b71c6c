// dropwatch's command language: one table drives parsing, `help` and tab completion, so the three cannot drift apart.
import { DropwatchError, quote } from '../errors/index.js';
import type { AlertMode } from '../backend/types.js';
import { BY_KEYS, parseBy, type ByKey } from '../aggregate/keys.js';

export { quote };

export type Command =
  | { name: 'start' }
  | { name: 'stop' }
  | { name: 'exit' }
  | { name: 'help' }
  | { name: 'show' }
  | { name: 'stats' }
  | { name: 'top' }
  | { name: 'set'; key: 'alertlimit'; value: number }
  | { name: 'set'; key: 'alertmode'; value: AlertMode }
  | { name: 'set'; key: 'trunc'; value: number }
  | { name: 'set'; key: 'queue'; value: number }
  | { name: 'set'; key: 'sw'; value: boolean }
  | { name: 'set'; key: 'hw'; value: boolean }
  | { name: 'set'; key: 'filter'; value: string | null }
  | { name: 'set'; key: 'stack'; value: boolean }
  | { name: 'set'; key: 'by'; value: ByKey[] };

export type SetKey = Extract<Command, { name: 'set' }>['key'];

interface SetSpec {
  key: SetKey;
  usage: string;
  /** dropwatch's help text, tabs and all, so `help` output matches it byte for byte. */
  help: string;
  values?: readonly string[];
  /** The values are a comma-separated list of these: completion completes the last one. */
  list?: boolean;
  /** Ours, not dropwatch's: listed after dropwatch's help so its part stays byte-identical. */
  extension?: boolean;
  parse(arg: string): Command;
}

const U32_MAX = 0xffff_ffff;

function parseUnsigned(key: string, arg: string, max: number): number {
  if (!/^[0-9]+$/.test(arg)) throw badInput(`invalid number for ${key}: ${quote(arg)} (expected a whole number)`);
  const value = Number(arg);
  if (!Number.isSafeInteger(value) || value > max) throw badInput(`${key} must be at most ${max}, got ${quote(arg)}`);
  return value;
}

function parseBool(key: string, arg: string): boolean {
  // dropwatch's strtobool(): exactly these four spellings.
  if (arg === 'true' || arg === '1') return true;
  if (arg === 'false' || arg === '0') return false;
  throw badInput(`invalid boolean value for ${key}: ${quote(arg)} (use true or false)`);
}

export const SET_COMMANDS: readonly SetSpec[] = [
  {
    key: 'alertlimit',
    usage: 'set alertlimit <number>',
    help: '\talertlimit <number>\t - capture only this many alert packets',
    parse: (arg) => ({
      name: 'set',
      key: 'alertlimit',
      value: parseUnsigned('alertlimit', arg, Number.MAX_SAFE_INTEGER),
    }),
  },
  {
    key: 'alertmode',
    usage: 'set alertmode summary|packet',
    help: '\talertmode <mode>\t - set mode to "summary" or "packet"',
    values: ['summary', 'packet'],
    parse: (arg) => {
      if (arg === 'summary' || arg === 'packet') return { name: 'set', key: 'alertmode', value: arg };
      throw badInput(`invalid alert mode: ${quote(arg)} (use summary or packet)`);
    },
  },
  {
    key: 'trunc',
    usage: 'set trunc <len>',
    help: '\ttrunc <len>\t\t - truncate packets to this length. Only applicable when "alertmode" is set to "packet"',
    parse: (arg) => ({ name: 'set', key: 'trunc', value: parseUnsigned('trunc', arg, U32_MAX) }),
  },
  {
    key: 'queue',
    usage: 'set queue <len>',
    help: '\tqueue <len>\t\t - queue up to this many packets in the kernel. Only applicable when "alertmode" is set to "packet"',
    parse: (arg) => ({ name: 'set', key: 'queue', value: parseUnsigned('queue', arg, U32_MAX) }),
  },
  {
    key: 'sw',
    usage: 'set sw true|false',
    help: '\tsw <true | false>\t - monitor software drops',
    values: ['true', 'false'],
    parse: (arg) => ({ name: 'set', key: 'sw', value: parseBool('sw', arg) }),
  },
  {
    key: 'hw',
    usage: 'set hw true|false',
    help: '\thw <true | false>\t - monitor hardware drops',
    values: ['true', 'false'],
    parse: (arg) => ({ name: 'set', key: 'hw', value: parseBool('hw', arg) }),
  },
  {
    key: 'filter',
    usage: 'set filter <expression>|none',
    help: 'set filter <expr | none>\t - show only drops matching expr, e.g. reason == NO_SOCKET',
    extension: true,
    parse: (arg) => ({ name: 'set', key: 'filter', value: arg === 'none' ? null : arg }),
  },
  {
    key: 'stack',
    usage: 'set stack true|false',
    help: 'set stack <true | false>\t - sample the kernel call chain behind drops, where the source records them',
    values: ['true', 'false'],
    extension: true,
    parse: (arg) => ({ name: 'set', key: 'stack', value: parseBool('stack', arg) }),
  },
  {
    key: 'by',
    usage: `set by <key[,key]> (keys: ${BY_KEYS.join(', ')})`,
    help: `set by <key[,key]>\t\t - group summary lines by ${BY_KEYS.join(', ')} (location is dropwatch's line)`,
    values: BY_KEYS,
    list: true,
    extension: true,
    parse: (arg) => ({ name: 'set', key: 'by', value: parseBy(arg) }),
  },
];

interface PlainSpec {
  name: Exclude<Command['name'], 'set'>;
  help: string;
  /** Ours, not dropwatch's: listed under "Also:". */
  extension?: boolean;
}

const PLAIN_COMMANDS: readonly PlainSpec[] = [
  { name: 'exit', help: 'exit\t\t\t\t - Quit dropwatch' },
  { name: 'help', help: 'help\t\t\t\t - Display this message' },
  { name: 'start', help: 'start\t\t\t\t - start capture' },
  { name: 'stop', help: 'stop\t\t\t\t - stop capture' },
  { name: 'show', help: 'show\t\t\t\t - show existing configuration' },
  { name: 'stats', help: 'stats\t\t\t\t - show statistics' },
  {
    name: 'top',
    help: 'top\t\t\t\t - live view of the drop sites, refreshed every second (q returns here)',
    extension: true,
  },
];

/** Longest line we parse; anything longer is refused whole rather than truncated into a different command. */
export const MAX_LINE = 4096;

export function badInput(message: string): DropwatchError {
  return new DropwatchError('E_BAD_INPUT', message);
}

/** Parses one REPL line. Returns null for a blank line; throws DropwatchError('E_BAD_INPUT') with a one-line message. */
export function parseCommand(line: string): Command | null {
  if (line.length > MAX_LINE) throw badInput(`line too long (${line.length} characters; at most ${MAX_LINE})`);
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) throw badInput('line contains control characters; ignored');
  const trimmed = line.trim();
  if (trimmed === '') return null;
  const [word = '', ...rest] = trimmed.split(/\s+/);
  if (word === 'set') {
    const [key, ...args] = rest;
    if (key === undefined) throw badInput(`set what? (${SET_COMMANDS.map((s) => s.key).join(', ')})`);
    const spec = SET_COMMANDS.find((s) => s.key === key);
    if (!spec) throw badInput(`unknown setting: ${quote(key)} (type 'help' for the list)`);
    if (args.length === 0) throw badInput(`missing value: ${spec.usage}`);
    // Only a filter expression may contain spaces.
    if (spec.key !== 'filter' && !spec.list && args.length > 1) throw badInput(`too many values: ${spec.usage}`);
    // A list may have spaces after its commas.
    const arg = spec.key === 'filter' ? trimmed.replace(/^set\s+filter\s+/, '') : spec.list ? args.join('') : args[0]!;
    return spec.parse(arg);
  }
  const plain = PLAIN_COMMANDS.find((c) => c.name === word);
  if (!plain) throw badInput(`unknown command: ${quote(word)} (type 'help' for the list)`);
  if (rest.length > 0) throw badInput(`${plain.name} takes no arguments`);
  return { name: plain.name };
}

/** dropwatch's `help` text, then ours; `notes` are backend-specific lines (what this backend cannot honour). */
export function helpText(notes: readonly string[] = []): string[] {
  const byName = (n: PlainSpec['name']) => PLAIN_COMMANDS.find((c) => c.name === n)!.help;
  return [
    'Command Syntax:',
    byName('exit'),
    byName('help'),
    'set:',
    ...SET_COMMANDS.filter((s) => !s.extension).map((s) => s.help),
    byName('start'),
    byName('stop'),
    byName('show'),
    byName('stats'),
    '',
    'Also:',
    ...PLAIN_COMMANDS.filter((c) => c.extension).map((c) => c.help),
    ...SET_COMMANDS.filter((s) => s.extension).map((s) => s.help),
    ...notes,
  ];
}

/** Tab completion over the same table: commands, `set` keys, and their fixed values. */
export function complete(line: string): [string[], string] {
  const words = line.trimStart().split(/\s+/);
  if (words.length <= 1) {
    const all = [...PLAIN_COMMANDS.map((c) => c.name), 'set'];
    const hits = all.filter((c) => c.startsWith(words[0] ?? ''));
    return [hits.map((h) => (h === 'set' ? 'set ' : h)), line];
  }
  if (words[0] !== 'set') return [[], line];
  if (words.length === 2) {
    const hits = SET_COMMANDS.filter((s) => s.key.startsWith(words[1]!)).map((s) => `set ${s.key} `);
    return [hits, line.trimStart()];
  }
  const spec = SET_COMMANDS.find((s) => s.key === words[1]);
  if (words.length === 3 && spec?.values) {
    // In a list only the last item is completed: `set by netns,d` → `set by netns,dev`.
    const done = spec.list ? words[2]!.slice(0, words[2]!.lastIndexOf(',') + 1) : '';
    const typed = words[2]!.slice(done.length);
    const hits = spec.values.filter((v) => v.startsWith(typed)).map((v) => `set ${spec.key} ${done}${v}`);
    return [hits, line.trimStart()];
  }
  return [[], line];
}
