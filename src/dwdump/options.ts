// Command-line parsing for dwdump: the options of Debian's dwdump (getopt "w:t:ql:psb:o:eh" and their long names),
// through commander configured to report, never to exit, so one handler owns the exit code.
import { Command, Option } from 'commander';
import { DropwatchError } from '../errors/index.js';
import { parseArgs } from '../process/commander.js';
import { packageVersion } from '../process/version.js';

/** What the run does; like dwdump, -q beats -s beats -e beats capturing when several are given. */
export type DwdumpAction = 'capture' | 'query' | 'stats' | 'exit';
/** Which drops to monitor: dwdump's default asks for both (SW_DROPS and HW_DROPS flags). */
export type DwdumpOrigin = 'all' | 'sw' | 'hw';
/** Where captures come from: NET_DM, the bpf source, or NET_DM where the kernel has it and bpf otherwise. */
export type DwdumpBackend = 'auto' | 'netdm' | 'bpf';
const BACKENDS: readonly DwdumpBackend[] = ['auto', 'netdm', 'bpf'];

export interface DwdumpOptions {
  action: DwdumpAction;
  /** `-w FILE`; null (or `-w -`) is standard output. */
  write: string | null;
  /** `-t`: NET_DM truncation length sent with CONFIG, 1..65535 (0 means no truncation, i.e. 65535, as in dwdump). */
  truncLen: number;
  /** `-l`: NET_DM per-CPU queue length sent with CONFIG. */
  queueLen: number;
  /** `-p`: join the events group only; no CONFIG, START or STOP. */
  passive: boolean;
  /** `-b`: receive buffer of the socket the alerts arrive on, in bytes. */
  rcvbuf: number;
  origin: DwdumpOrigin;
  /** `-B`: the drop source of a capture (queries, stats and -e always speak to NET_DM). */
  backend: DwdumpBackend;
  /** The options given that only NET_DM understands (--passive, --limit, --bufsize), as named in messages. */
  netdmOnly: readonly string[];
}

/** Debian dwdump's usage line, kept so that scripts and people find the same synopsis. */
export const DWDUMP_USAGE = 'dwdump [ -w <file> -t <length> -q -l <limit> -p -s -b <size> -e -o <sw|hw> ]';

export const MAX_TRUNC_LEN = 0xffff;
export const DEFAULT_QUEUE_LEN = 1000;
export const DEFAULT_RCVBUF = 1024 * 1024;
/** setsockopt takes an int and the kernel doubles it: larger values cannot be expressed. */
export const MAX_RCVBUF = 0x3fffffff;

export const DWDUMP_DEFAULTS: DwdumpOptions = {
  action: 'capture',
  write: null,
  truncLen: MAX_TRUNC_LEN,
  queueLen: DEFAULT_QUEUE_LEN,
  passive: false,
  rcvbuf: DEFAULT_RCVBUF,
  origin: 'all',
  backend: 'auto',
  netdmOnly: [],
};

function usage(message: string): DropwatchError {
  return new DropwatchError('E_USAGE', message, { exitCode: 1 });
}

function wholeNumber(name: string, text: string, max: number): number {
  // dwdump uses atol(), which turns "abc" into 0 and "10x" into 10; a typo should not silently become a setting.
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw usage(`invalid number for ${name}: ${JSON.stringify(text)} (expected a whole number)`);
  const n = Number(text);
  if (n > max) throw usage(`${name} must be at most ${max}, got ${text}`);
  return n;
}

/** `-t`: 0 keeps dwdump's meaning (no truncation: the largest length NET_DM accepts here). */
export function parseTruncLen(text: string): number {
  const n = wholeNumber('--trunc', text, MAX_TRUNC_LEN);
  return n === 0 ? MAX_TRUNC_LEN : n;
}

/** `-b`: bytes, or with a K/M/G suffix (powers of 1024), at least 1. */
export function parseBufsize(text: string): number {
  const m = /^(\d+)([kKmMgG])?$/.exec(text);
  if (!m) throw usage(`invalid size for --bufsize: ${JSON.stringify(text)} (expected bytes, e.g. 4194304 or 4M)`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
  const n = Number(m[1]) * scale;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_RCVBUF)
    throw usage(`--bufsize must be from 1 to ${MAX_RCVBUF} bytes, got ${text}`);
  return n;
}

/** `a`, `a and b`, `a, b and c`. */
const listed = (names: readonly string[]): string =>
  names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;

/** With `-B bpf`: an action or option only NET_DM understands is refused in one line. */
function checkBpfOptions(action: DwdumpAction, netdmOnly: readonly string[]): void {
  const given = action === 'capture' ? netdmOnly : [`--${action}`];
  if (given.length > 0)
    throw usage(`${listed(given)} speak${given.length === 1 ? 's' : ''} to NET_DM alone: not with --backend bpf`);
}

/** Parses argv (without node and script). Help text goes to `write`; errors throw DropwatchError('E_USAGE'). */
export function parseDwdumpArgs(args: readonly string[], write: (text: string) => void): DwdumpOptions | 'help' {
  const program = new Command('dwdump')
    .usage('[options]')
    .description(
      'Capture the packets the kernel drops (NET_DM packet alerts) into a pcap file for Wireshark/tshark.\n' +
        'The first record maps the NET_DM generic netlink family id, so Wireshark decodes the rest as net_dm.',
    )
    .addOption(
      new Option(
        '-w, --write <file>',
        'write the pcap here (created 0600, never through a symlink); - or no -w: standard output',
      ),
    )
    .addOption(new Option('-t, --trunc <length>', 'truncate each dropped packet to this many bytes (0 or none: 65535)'))
    .addOption(new Option('-q, --query', "print the kernel's NET_DM configuration and exit"))
    .addOption(
      new Option('-l, --limit <limit>', `per-CPU queue length of dropped packets (default ${DEFAULT_QUEUE_LEN})`),
    )
    .addOption(new Option('-p, --passive', 'only listen: change no configuration, start and stop nothing'))
    .addOption(new Option('-s, --stats', "print the kernel's NET_DM statistics and exit"))
    .addOption(new Option('-b, --bufsize <size>', 'receive buffer of the alert socket, bytes or K/M/G (default 1M)'))
    .addOption(new Option('-o, --origin <origin>', 'monitor only sw or hw drops (default: both)'))
    .addOption(new Option('-e, --exit', 'ask the kernel to stop monitoring and exit'))
    .addOption(
      new Option(
        '-B, --backend <source>',
        'capture from netdm, or from bpf (the same NET_DM records, built from what a BPF program saw); ' +
          'default auto: netdm where the kernel has it, else bpf',
      ),
    );
  if (parseArgs(program, args, write, `dwdump ${packageVersion()}`) === 'help') return 'help';
  const o = program.opts<{
    write?: string;
    trunc?: string;
    query?: true;
    limit?: string;
    passive?: true;
    stats?: true;
    bufsize?: string;
    origin?: string;
    exit?: true;
    backend?: string;
  }>();
  if (o.origin !== undefined && o.origin !== 'sw' && o.origin !== 'hw')
    throw usage(`Invalid origin: '${o.origin}' (use sw or hw)`);
  if (o.write === '') throw usage('--write needs a file name (or - for standard output)');
  const backend = o.backend ?? 'auto';
  if (!BACKENDS.includes(backend as DwdumpBackend))
    throw usage(`Invalid backend: '${backend}' (use auto, netdm or bpf)`);
  const action: DwdumpAction = o.query ? 'query' : o.stats ? 'stats' : o.exit ? 'exit' : 'capture';
  const netdmOnly = (
    [
      ['--passive', o.passive],
      ['--limit', o.limit],
      ['--bufsize', o.bufsize],
    ] as const
  )
    .filter(([, given]) => given !== undefined)
    .map(([name]) => name);
  if (backend === 'bpf') checkBpfOptions(action, netdmOnly);
  return {
    action,
    write: o.write === undefined || o.write === '-' ? null : o.write,
    truncLen: o.trunc === undefined ? MAX_TRUNC_LEN : parseTruncLen(o.trunc),
    queueLen: o.limit === undefined ? DEFAULT_QUEUE_LEN : wholeNumber('--limit', o.limit, 0xffffffff),
    passive: Boolean(o.passive),
    rcvbuf: o.bufsize === undefined ? DEFAULT_RCVBUF : parseBufsize(o.bufsize),
    origin: (o.origin as DwdumpOrigin | undefined) ?? 'all',
    backend: backend as DwdumpBackend,
    netdmOnly,
  };
}
