// dwdump's option parsing as a table: argv in, options (or the one-line usage error) out; nothing is opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropwatchError } from '../../src/errors/index.js';
import {
  DWDUMP_DEFAULTS,
  parseBufsize,
  parseDwdumpArgs,
  parseTruncLen,
  type DwdumpOptions,
} from '../../src/dwdump/options.js';

const parse = (args: string[]) => parseDwdumpArgs(args, () => {});

const ok: [string[], Partial<DwdumpOptions>][] = [
  [[], {}],
  [['-w', '/tmp/x.pcap'], { write: '/tmp/x.pcap' }],
  [['--write=/tmp/y'], { write: '/tmp/y' }],
  [['-w/tmp/z'], { write: '/tmp/z' }],
  [['-w', '-'], { write: null }],
  [['-t', '100'], { truncLen: 100 }],
  [['--trunc', '0'], { truncLen: 65535 }],
  [['-t', '65535'], { truncLen: 65535 }],
  [['-q'], { action: 'query' }],
  [['--query'], { action: 'query' }],
  [['-s'], { action: 'stats' }],
  [['--stats'], { action: 'stats' }],
  [['-e'], { action: 'exit' }],
  [['--exit', '-o', 'sw'], { action: 'exit', origin: 'sw' }],
  // dwdump's precedence when several actions are given: query, then stats, then exit.
  [['-e', '-s', '-q'], { action: 'query' }],
  [['-e', '-s'], { action: 'stats' }],
  [['-qs'], { action: 'query' }],
  [['-l', '1'], { queueLen: 1, netdmOnly: ['--limit'] }],
  [['--limit', '0'], { queueLen: 0, netdmOnly: ['--limit'] }],
  [['-l', '4294967295'], { queueLen: 4294967295, netdmOnly: ['--limit'] }],
  [['-p'], { passive: true, netdmOnly: ['--passive'] }],
  [['--passive', '-w', 'f'], { passive: true, write: 'f', netdmOnly: ['--passive'] }],
  [['-b', '4194304'], { rcvbuf: 4194304, netdmOnly: ['--bufsize'] }],
  [['--bufsize', '4M'], { rcvbuf: 4 * 1024 * 1024, netdmOnly: ['--bufsize'] }],
  [['-b', '512k'], { rcvbuf: 512 * 1024, netdmOnly: ['--bufsize'] }],
  [['-b', '1023M'], { rcvbuf: 1023 * 1024 * 1024, netdmOnly: ['--bufsize'] }],
  [['-o', 'sw'], { origin: 'sw' }],
  [['--origin', 'hw'], { origin: 'hw' }],
  [
    ['-w', 'out.pcap', '-t', '128', '-l', '10', '-b', '2M', '-o', 'sw'],
    {
      write: 'out.pcap',
      truncLen: 128,
      queueLen: 10,
      rcvbuf: 2 * 1024 * 1024,
      origin: 'sw',
      netdmOnly: ['--limit', '--bufsize'],
    },
  ],
  [['-B', 'bpf'], { backend: 'bpf' }],
  [['--backend', 'netdm', '-q'], { backend: 'netdm', action: 'query' }],
  [['--backend=auto', '-t', '64', '-o', 'sw'], { truncLen: 64, origin: 'sw' }],
  [['-B', 'bpf', '-w', 'f', '-t', '100', '-o', 'hw'], { backend: 'bpf', write: 'f', truncLen: 100, origin: 'hw' }],
];

for (const [args, expected] of ok) {
  test(`dwdump ${args.join(' ') || '(no options)'}`, () => {
    assert.deepEqual(parse(args), { ...DWDUMP_DEFAULTS, ...expected });
  });
}

test("defaults are dwdump's: stdout, no truncation (65535), queue 1000, 1 MiB buffer, both origins", () => {
  assert.deepEqual(DWDUMP_DEFAULTS, {
    action: 'capture',
    write: null,
    truncLen: 65535,
    queueLen: 1000,
    passive: false,
    rcvbuf: 1048576,
    origin: 'all',
    backend: 'auto',
    netdmOnly: [],
  });
});

const bad: [string[], RegExp][] = [
  [['-t', 'abc'], /^invalid number for --trunc: "abc"/],
  [['-t', '10x'], /^invalid number for --trunc/],
  [['-t', '-1'], /^invalid number for --trunc|option/],
  [['-t', '65536'], /^--trunc must be at most 65535/],
  [['-l', '4294967296'], /^--limit must be at most 4294967295/],
  [['-l', ''], /^invalid number for --limit/],
  [['-b', '0'], /^--bufsize must be from 1/],
  [['-b', '2G'], /^--bufsize must be from 1/],
  [['-b', '1.5M'], /^invalid size for --bufsize/],
  [['-o', 'all'], /^Invalid origin: 'all'/],
  [['-o'], /argument missing/],
  [['-w'], /argument missing/],
  [['-w', ''], /^--write needs a file name/],
  [['-x'], /^unknown option '-x'/],
  [['--bogus'], /^unknown option '--bogus'/],
  [['file.pcap'], /too many arguments/],
  [['-B', 'tracefs'], /^Invalid backend: 'tracefs' \(use auto, netdm or bpf\)$/],
  [['-B', 'bpf', '-q'], /^--query speaks to NET_DM alone: not with --backend bpf$/],
  [['-B', 'bpf', '-s'], /^--stats speaks to NET_DM alone: not with --backend bpf$/],
  [['-B', 'bpf', '-e'], /^--exit speaks to NET_DM alone: not with --backend bpf$/],
  [['-B', 'bpf', '-p'], /^--passive speaks to NET_DM alone: not with --backend bpf$/],
  [['-B', 'bpf', '-l', '5', '-b', '2M'], /^--limit and --bufsize speak to NET_DM alone: not with --backend bpf$/],
];

for (const [args, message] of bad) {
  test(`refused: dwdump ${args.join(' ')}`, () => {
    assert.throws(
      () => parse(args),
      (err: unknown) => {
        assert.ok(err instanceof DropwatchError);
        assert.equal(err.code, 'E_USAGE');
        assert.equal(err.exitCode, 1);
        assert.match(err.message, message);
        assert.ok(!err.message.includes('\n'), 'one line');
        return true;
      },
    );
  });
}

test('-h prints help to the given writer and reports "help"', () => {
  let text = '';
  assert.equal(
    parseDwdumpArgs(['-h'], (t) => (text += t)),
    'help',
  );
  for (const o of [
    '--write',
    '--trunc',
    '--query',
    '--limit',
    '--passive',
    '--stats',
    '--bufsize',
    '--origin',
    '--exit',
    '--backend',
  ])
    assert.ok(text.includes(o), `help lists ${o}`);
});

test('value parsers on their own', () => {
  assert.equal(parseTruncLen('1'), 1);
  assert.equal(parseTruncLen('0'), 65535);
  assert.equal(parseBufsize('1'), 1);
  assert.equal(parseBufsize('1K'), 1024);
  assert.equal(parseBufsize('1023M'), 1023 * 1024 * 1024);
});
