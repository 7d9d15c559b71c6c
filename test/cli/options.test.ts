// Option parsing as a table: argv in, options (or the one-line error) out; no backend is opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDropwatchArgs, parseMetricsAddress, type DropwatchOptions } from '../../src/cli/options.js';
import { DropwatchError } from '../../src/errors/index.js';
import { format } from '../../src/filter/index.js';
import { parseCommand } from '../../src/engine/commands.js';

const parse = (args: string[]) => parseDropwatchArgs(args, () => {});

const DEFAULTS: Omit<DropwatchOptions, 'filter'> = {
  lookup: 'kas',
  listMethods: false,
  backend: 'auto',
  start: false,
  durationMs: null,
  alertLimit: null,
  mode: null,
  timestamp: false,
  format: 'text',
  metrics: null,
  metricsLabels: [],
  metricsMaxSeries: 500,
  stack: false,
  top: false,
  by: ['location'],
};

const ok: [string[], Partial<DropwatchOptions>][] = [
  [[], {}],
  [['-l', 'none', '-b', 'tracefs'], { lookup: 'none', backend: 'tracefs' }],
  [['-l', 'list'], { listMethods: true }],
  [['-s'], { start: true }],
  [['--start', '--duration', '3'], { start: true, durationMs: 3000 }],
  [['-s', '-d', '0.25'], { start: true, durationMs: 250 }],
  [['-s', '-d', '.5'], { start: true, durationMs: 500 }],
  [['-n', '10'], { alertLimit: 10 }],
  [['--alert-limit', '0'], { alertLimit: 0 }],
  [['-m', 'packet'], { mode: 'packet' }],
  [['--mode', 'summary'], { mode: 'summary' }],
  [['-f', 'json'], { format: 'json' }],
  [['--format', 'text', '--timestamp'], { timestamp: true }],
  [['--metrics', ':9469'], { metrics: { host: '127.0.0.1', port: 9469 } }],
  [['--metrics', '9469'], { metrics: { host: '127.0.0.1', port: 9469 } }],
  [['--metrics', '0.0.0.0:9100'], { metrics: { host: '0.0.0.0', port: 9100 } }],
  [['--metrics', '[::1]:0'], { metrics: { host: '::1', port: 0 } }],
  [['--metrics', 'localhost:80'], { metrics: { host: 'localhost', port: 80 } }],
  [['--by', 'netns,dev'], { by: ['netns', 'dev'] }],
  [['--by', 'location, container'], { by: ['location', 'container'] }],
  // Grouping by location is dropwatch's line, whatever the output.
  [['--by', 'location', '-f', 'json', '-m', 'packet'], { format: 'json', mode: 'packet' }],
  // Packets counted into lines by their device (NET_DM's input port).
  [['--by', 'dev', '-m', 'packet'], { by: ['dev'], mode: 'packet' }],
  [
    ['--metrics', ':1', '--metrics-labels', 'dev,netns'],
    { metrics: { host: '127.0.0.1', port: 1 }, metricsLabels: ['netns', 'dev'] },
  ],
  [
    ['--metrics', ':1', '--metrics-labels', 'pod', '--metrics-max-series', '20'],
    { metrics: { host: '127.0.0.1', port: 1 }, metricsLabels: ['pod'], metricsMaxSeries: 20 },
  ],
  [
    ['--top', '-m', 'packet', '--metrics', ':1'],
    { top: true, mode: 'packet', metrics: { host: '127.0.0.1', port: 1 } },
  ],
  [
    ['-s', '-d', '3', '-n', '5', '-m', 'packet', '-f', 'json', '--metrics', ':1'],
    {
      start: true,
      durationMs: 3000,
      alertLimit: 5,
      mode: 'packet',
      format: 'json',
      metrics: { host: '127.0.0.1', port: 1 },
    },
  ],
];

for (const [args, expected] of ok) {
  test(`parses ${JSON.stringify(args)}`, () => {
    const got = parse(args);
    assert.notEqual(got, 'help');
    const { filter, ...rest } = got as DropwatchOptions;
    assert.equal(filter, null);
    assert.deepEqual(rest, { ...DEFAULTS, ...expected });
  });
}

const bad: [string[], RegExp][] = [
  [['-x'], /^unknown option '-x'$/],
  [['-l', 'bfd'], /^Unknown lookup method bfd$/],
  [['-b', 'pcap'], /^Unknown backend pcap/],
  [['-f', 'xml'], /^Unknown format xml/],
  [['-m', 'both'], /^Unknown mode both/],
  // A name that is empty, or not one word, is quoted so the message shows where it begins and ends.
  [['-b', ''], /^Unknown backend "" \(use auto, /],
  [['-b', 'net dm'], /^Unknown backend "net dm" \(use /],
  [['-l', ''], /^Unknown lookup method ""$/],
  [['-f', ''], /^Unknown format "" \(use text or json\)$/],
  [['-m', ' '], /^Unknown mode " " \(use summary or packet\)$/],
  [['-d', '3'], /^--duration applies to --start/],
  [['-s', '-d', '0'], /^duration must be more than 0/],
  [['-s', '-d', '-1'], /^invalid duration|unknown option/],
  [['-s', '-d', '1e3'], /^invalid duration "1e3"/],
  [['-s', '-d', 'ten'], /^invalid duration "ten"/],
  [['-n', '-5'], /^invalid number for --alert-limit|unknown option/],
  [['-n', '2.5'], /^invalid number for --alert-limit: "2.5"/],
  [['-f', 'json', '--timestamp'], /^--timestamp is for text output/],
  [['--metrics', 'host:'], /^invalid --metrics address "host:"/],
  [['--metrics', ':70000'], /^invalid --metrics address ":70000"/],
  [['--metrics', '::1:9469'], /^invalid --metrics address/],
  [['--metrics'], /argument missing/],
  [['--metrics-labels', 'netns'], /^--metrics-labels applies to --metrics$/],
  [
    ['--metrics', ':1', '--metrics-labels', 'netns,cgroup'],
    /^unknown metrics label cgroup \(use netns, container, pod or dev\)$/,
  ],
  [['--metrics', ':1', '--metrics-max-series', '5'], /^--metrics-max-series applies to --metrics-labels$/],
  [
    ['--metrics', ':1', '--metrics-labels', 'dev', '--metrics-max-series', 'many'],
    /^invalid number for --metrics-max-series: "many"/,
  ],
  [['extra'], /too many arguments/],
  [['--top', '-s'], /^--top draws its own screen/],
  [['--top', '-f', 'json'], /^--top draws its own screen/],
  [['--top', '--timestamp'], /^--top draws its own screen/],
  [['--by', 'ns'], /^--by: unknown key 'ns' \(keys: location, reason, netns, container, pod, dev, comm\)$/],
  [['--by', 'netns,'], /^--by: no key \(keys: /],
  [['--by', 'container', '-f', 'json'], /^--by groups text summary lines; JSON summaries carry every key/],
  [['--by', 'dev', '--top'], /^--by groups summary lines; --top draws its own screen$/],
];

for (const [args, message] of bad) {
  test(`rejects ${JSON.stringify(args)}`, () => {
    assert.throws(
      () => parse(args),
      (err: unknown) =>
        err instanceof DropwatchError && err.code === 'E_USAGE' && message.test(err.message) && err.exitCode === 1,
    );
  });
}

test('-n past the largest whole number says what the prompt says for set alertlimit', () => {
  const huge = '99999999999999999999';
  let prompt = '';
  try {
    parseCommand(`set alertlimit ${huge}`);
  } catch (err) {
    prompt = (err as Error).message;
  }
  assert.match(prompt, /^alertlimit must be at most \d+, got "99999999999999999999"$/);
  assert.throws(
    () => parse(['-s', '-n', huge]),
    (err: unknown) => err instanceof DropwatchError && err.message === prompt.replace(/^alertlimit/, '--alert-limit'),
  );
});

test('--filter and --ignore-reason combine into one expression', () => {
  const got = parse([
    '--filter',
    'protocol == ip',
    '--ignore-reason',
    'no_socket, SKB_DROP_REASON_TCP_CSUM',
  ]) as DropwatchOptions;
  assert.equal(format(got.filter!), 'reason != NO_SOCKET && reason != TCP_CSUM && protocol == 0x0800');
  const only = parse(['--filter', 'reason == NO_SOCKET']) as DropwatchOptions;
  assert.equal(format(only.filter!), 'reason == NO_SOCKET');
});

test('a bad filter is one line naming the option and the column, exit 1', () => {
  const cases: [string[], string][] = [
    [['--filter', 'reason == NO_SOCKET &&'], '--filter: '],
    [['--filter', 'reason === x'], '--filter: '],
    [['--ignore-reason', 'NO_SOCKET,,X'], '--ignore-reason: empty reason name at column 11'],
    [['--ignore-reason', 'NO-SOCKET'], "--ignore-reason: 'NO-SOCKET' is not a drop reason name at column 1"],
  ];
  for (const [args, start] of cases) {
    assert.throws(
      () => parse(args),
      (err: unknown) => {
        assert.ok(err instanceof DropwatchError);
        assert.equal(err.code, 'E_BAD_INPUT');
        assert.equal(err.exitCode, 1);
        assert.ok(err.message.startsWith(start), err.message);
        assert.match(err.message, /at column \d+$/);
        assert.ok(!err.message.includes('\n'));
        return true;
      },
    );
  }
});

test('--help goes to the writer and lists every option', () => {
  let text = '';
  assert.equal(
    parseDropwatchArgs(['--help'], (t) => (text += t)),
    'help',
  );
  for (const o of [
    '--lmethod',
    '--backend',
    '--start',
    '--duration',
    '--alert-limit',
    '--mode',
    '--format',
    '--timestamp',
    '--metrics',
    '--metrics-labels',
    '--metrics-max-series',
    '--filter',
    '--ignore-reason',
    '--top',
    '--help',
  ])
    assert.ok(text.includes(o), o);
});

test('parseMetricsAddress keeps IPv6 brackets out of the host', () => {
  assert.deepEqual(parseMetricsAddress('[fe80::1%eth0]:9469'), { host: 'fe80::1%eth0', port: 9469 });
});
