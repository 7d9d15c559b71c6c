import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand, helpText, complete, MAX_LINE } from '../../src/engine/commands.js';
import { DropwatchError } from '../../src/errors/index.js';

test('parses every dropwatch command', () => {
  assert.deepEqual(parseCommand('start'), { name: 'start' });
  assert.deepEqual(parseCommand('  stop  '), { name: 'stop' });
  assert.deepEqual(parseCommand('exit'), { name: 'exit' });
  assert.deepEqual(parseCommand('help'), { name: 'help' });
  assert.deepEqual(parseCommand('show'), { name: 'show' });
  assert.deepEqual(parseCommand('stats'), { name: 'stats' });
  assert.deepEqual(parseCommand('set alertlimit 5'), { name: 'set', key: 'alertlimit', value: 5 });
  assert.deepEqual(parseCommand('set alertmode packet'), { name: 'set', key: 'alertmode', value: 'packet' });
  assert.deepEqual(parseCommand('set alertmode summary'), { name: 'set', key: 'alertmode', value: 'summary' });
  assert.deepEqual(parseCommand('set trunc 128'), { name: 'set', key: 'trunc', value: 128 });
  assert.deepEqual(parseCommand('set queue 4294967295'), { name: 'set', key: 'queue', value: 4294967295 });
  assert.deepEqual(parseCommand('set sw true'), { name: 'set', key: 'sw', value: true });
  assert.deepEqual(parseCommand('set sw 0'), { name: 'set', key: 'sw', value: false });
  assert.deepEqual(parseCommand('set hw 1'), { name: 'set', key: 'hw', value: true });
  assert.deepEqual(parseCommand('set filter reason == NO_SOCKET && protocol == ip'), {
    name: 'set',
    key: 'filter',
    value: 'reason == NO_SOCKET && protocol == ip',
  });
  assert.deepEqual(parseCommand('set filter none'), { name: 'set', key: 'filter', value: null });
  assert.equal(parseCommand(''), null);
  assert.equal(parseCommand('   \t '), null);
});

const bad: [string, string][] = [
  ['frobnicate', `unknown command: "frobnicate" (type 'help' for the list)`],
  ['start now', 'start takes no arguments'],
  ['set', 'set what? (alertlimit, alertmode, trunc, queue, sw, hw, filter, stack, by)'],
  ['set by ns', "unknown key 'ns' (keys: location, reason, netns, container, pod, dev, comm)"],
  ['set by', 'missing value: set by <key[,key]> (keys: location, reason, netns, container, pod, dev, comm)'],
  ['set colour red', `unknown setting: "colour" (type 'help' for the list)`],
  ['set alertlimit', 'missing value: set alertlimit <number>'],
  ['set alertlimit abc', 'invalid number for alertlimit: "abc" (expected a whole number)'],
  ['set alertlimit -1', 'invalid number for alertlimit: "-1" (expected a whole number)'],
  ['set alertlimit 1.5', 'invalid number for alertlimit: "1.5" (expected a whole number)'],
  ['set alertlimit 99999999999999999999', 'alertlimit must be at most 9007199254740991, got "99999999999999999999"'],
  ['set trunc 4294967296', 'trunc must be at most 4294967295, got "4294967296"'],
  ['set queue 1 2', 'too many values: set queue <len>'],
  ['set sw maybe', 'invalid boolean value for sw: "maybe" (use true or false)'],
  ['set alertmode loud', 'invalid alert mode: "loud" (use summary or packet)'],
  ['st\x01art', 'line contains control characters; ignored'],
  ['\x1b[A', 'line contains control characters; ignored'],
  ['x'.repeat(10_000), `line too long (10000 characters; at most ${MAX_LINE})`],
  ['x'.repeat(65_536), `line too long (65536 characters; at most ${MAX_LINE})`],
];

for (const [line, message] of bad) {
  test(`bad input gets one clear line: ${JSON.stringify(line.slice(0, 30))}`, () => {
    assert.throws(
      () => parseCommand(line),
      (err: unknown) => err instanceof DropwatchError && err.code === 'E_BAD_INPUT' && err.message === message,
    );
    const err = (() => {
      try {
        parseCommand(line);
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    assert.ok(err && !err.message.includes('\n'), 'one line');
  });
}

test('long words are cut in messages, never echoed whole', () => {
  assert.throws(
    () => parseCommand(`set sw ${'y'.repeat(1000)}`),
    (err: Error) => err.message.length < 120,
  );
});

test("help starts with dropwatch's text byte for byte", () => {
  const expected = [
    'Command Syntax:',
    'exit\t\t\t\t - Quit dropwatch',
    'help\t\t\t\t - Display this message',
    'set:',
    '\talertlimit <number>\t - capture only this many alert packets',
    '\talertmode <mode>\t - set mode to "summary" or "packet"',
    '\ttrunc <len>\t\t - truncate packets to this length. Only applicable when "alertmode" is set to "packet"',
    '\tqueue <len>\t\t - queue up to this many packets in the kernel. Only applicable when "alertmode" is set to "packet"',
    '\tsw <true | false>\t - monitor software drops',
    '\thw <true | false>\t - monitor hardware drops',
    'start\t\t\t\t - start capture',
    'stop\t\t\t\t - stop capture',
    'show\t\t\t\t - show existing configuration',
    'stats\t\t\t\t - show statistics',
  ];
  assert.deepEqual(helpText().slice(0, expected.length), expected);
  assert.ok(helpText(['a note']).includes('a note'));
});

test('completion comes from the same table', () => {
  assert.deepEqual(complete('st')[0].sort(), ['start', 'stats', 'stop']);
  assert.deepEqual(complete('se')[0], ['set ']);
  assert.deepEqual(complete('set al')[0], ['set alertlimit ', 'set alertmode ']);
  assert.deepEqual(complete('set alertmode p')[0], ['set alertmode packet']);
  assert.deepEqual(complete('set sw ')[0], ['set sw true', 'set sw false']);
  assert.deepEqual(complete('show x')[0], []);
});
