// The command line on random argv: parseDropwatchArgs returns options, 'help', or throws DropwatchError with a
// one-line message and exit code 1 — E_USAGE, or E_BAD_INPUT for a --filter/--ignore-reason expression that does not
// parse (that one names the column) — never anything else, and never exits the process (commander is told not to).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseDropwatchArgs } from '../../src/cli/options.js';
import { DropwatchError } from '../../src/errors/index.js';

const FILTER_OPTIONS = ['--filter', '--ignore-reason'];

function check(argv: string[], oneLine = false): void {
  let help = '';
  let result: ReturnType<typeof parseDropwatchArgs>;
  try {
    result = parseDropwatchArgs(argv, (text) => (help += text));
  } catch (err) {
    assert.ok(err instanceof DropwatchError, `${JSON.stringify(argv)}: not a DropwatchError: ${String(err)}`);
    assert.equal(err.exitCode, 1);
    const filterGiven = argv.some((a) => FILTER_OPTIONS.some((o) => a === o || a.startsWith(`${o}=`)));
    const allowed = filterGiven ? ['E_USAGE', 'E_BAD_INPUT'] : ['E_USAGE'];
    assert.ok(allowed.includes(err.code), `${JSON.stringify(argv)}: ${err.code} ${err.message}`);
    if (oneLine) assert.ok(!/[\n\r]/.test(err.message), `one line: ${JSON.stringify(err.message)}`);
    return;
  }
  if (result === 'help') {
    assert.match(help, /^Usage: dropwatch/);
    return;
  }
  assert.equal(help, '');
  assert.ok(['kas', 'none'].includes(result.lookup));
  assert.ok(['auto', 'netdm', 'bpf', 'tracefs'].includes(result.backend));
  assert.ok(['text', 'json'].includes(result.format));
  if (result.durationMs !== null)
    assert.ok(result.start && Number.isSafeInteger(result.durationMs) && result.durationMs > 0);
  if (result.alertLimit !== null) assert.ok(Number.isSafeInteger(result.alertLimit) && result.alertLimit >= 0);
  if (result.metrics) assert.ok(result.metrics.port >= 0 && result.metrics.port <= 65535);
}

const option = fc.constantFrom(
  '-l',
  '--lmethod',
  '-b',
  '--backend',
  '-s',
  '--start',
  '-d',
  '--duration',
  '-n',
  '--alert-limit',
  '-m',
  '--mode',
  '-f',
  '--format',
  '--timestamp',
  '--metrics',
  '--filter',
  '--ignore-reason',
  '-h',
  '--help',
  '--',
  '-',
  '-sd',
  '-ln',
  '--lmethod=kas',
  '--filter=',
  '--metrics=:0',
  '--bogus',
  '-x',
);
const value = fc.oneof(
  fc.constantFrom(
    'kas',
    'none',
    'list',
    'auto',
    'netdm',
    'tracefs',
    'text',
    'json',
    'summary',
    'packet',
    '0',
    '1',
    '0.5',
    '-1',
    '1e3',
    '99999999999999999999',
    ':9469',
    '[::1]:80',
    '0.0.0.0:65536',
    'reason == NO_SOCKET',
    'reason ==',
    'NO_SOCKET,,',
    '',
    ' ',
    'symbol =~ /(/',
  ),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

test('random argv: options, help, or E_USAGE (E_BAD_INPUT for filter syntax), exit code 1, nothing else', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(option, value), { maxLength: 8 }), (argv) => check(argv)),
    { numRuns: 5000 },
  );
});

test('each option with each kind of value', () => {
  fc.assert(
    fc.property(option, value, fc.boolean(), (o, v, start) => check(start ? ['-s', o, v] : [o, v])),
    {
      numRuns: 3000,
    },
  );
});

// The top-level handler escapes control characters, so a hostile value cannot add lines to stderr.
test('rejected values are shown on one line (-l, -b, -f, -m, unknown options)', {}, () => {
  fc.assert(
    fc.property(option, value, (o, v) => check([o, v], true)),
    { numRuns: 3000 },
  );
  for (const argv of [['-l', 'kas\nx'], ['-b', 'a\rb'], ['-f', '\n'], ['-m', 'x\ny'], ['--x\ny']]) check(argv, true);
});
