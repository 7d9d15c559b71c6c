// The REPL command parser on hostile lines: random text, control characters, 64 kB lines, near-misses of real
// commands. It returns a command (or null for a blank line) or throws DropwatchError E_BAD_INPUT with a message that
// is one short, printable line, whatever the input: the message is echoed to a terminal, so input must not be able to
// put escape sequences, line breaks or megabytes into it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_LINE, parseCommand, SET_COMMANDS } from '../../src/engine/commands.js';
import { DropwatchError } from '../../src/errors/index.js';
import { memoryBackend } from '../helpers/backend.js';

/** C0, DEL, C1 and the Unicode line/paragraph separators: nothing a terminal should receive from an echoed input. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
/** Longest message: the fixed text plus a quoted excerpt of at most 40 characters, each escaped to at most 6. */
const MAX_MESSAGE = 400;

function parsesOrRejects(line: string): void {
  let result: ReturnType<typeof parseCommand>;
  try {
    result = parseCommand(line);
  } catch (err) {
    assert.ok(err instanceof DropwatchError, `not a DropwatchError: ${String(err)}`);
    assert.equal(err.code, 'E_BAD_INPUT');
    assert.ok(!UNSAFE.test(err.message), `unsafe character in ${JSON.stringify(err.message)}`);
    assert.ok(err.message.length > 0 && err.message.length <= MAX_MESSAGE, `message of ${err.message.length}`);
    return;
  }
  if (result === null) {
    assert.equal(line.trim(), '', 'null only for a blank line');
    return;
  }
  // Whatever parsed came from a line of acceptable length and without control characters.
  assert.ok(line.length <= MAX_LINE);
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(line));
  if (result.name === 'set') {
    assert.ok(SET_COMMANDS.some((s) => s.key === result.key));
    if (typeof result.value === 'number') assert.ok(Number.isSafeInteger(result.value) && result.value >= 0);
  }
}

const words = fc.constantFrom(
  'start',
  'stop',
  'exit',
  'help',
  'show',
  'stats',
  'set',
  ...SET_COMMANDS.map((s) => s.key),
  'summary',
  'packet',
  'true',
  'false',
  '0',
  '1',
  '-1',
  '4294967296',
  '9007199254740993',
  'none',
  'reason == NO_SOCKET',
  '\u001b[31m',
  '\u009b31m',
  '\u2028',
  '\t',
  '\r',
  ' ',
  '\ud800',
);
const nearMiss = fc.array(words, { maxLength: 6 }).map((w) => w.join(' '));
const controlHeavy = fc.string({
  unit: fc.integer({ min: 0, max: 0x9f }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});

test('random and near-miss lines: a command, null for blank, or one safe E_BAD_INPUT line', () => {
  fc.assert(
    fc.property(fc.oneof(nearMiss, controlHeavy, fc.string({ unit: 'binary', maxLength: 80 })), parsesOrRejects),
    { numRuns: 5000 },
  );
});

test('unknown words quoted in the message cannot carry terminal controls (C1, line separators)', () => {
  for (const bad of ['\u009b31mred', 'x\u2028y', 'set \u0085', 'set filter\u2029', '\u009d0;title\u0007']) {
    parsesOrRejects(bad);
  }
});

test('64 kB lines (with and without control characters) are refused whole, quickly, in one line', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('set filter ', 'start', 'x', ''),
      fc.integer({ min: MAX_LINE + 1, max: 65_536 }),
      fc.option(fc.integer({ min: 0, max: 0x1f })),
      (prefix, length, control) => {
        let line = (prefix + 'a'.repeat(length)).slice(0, length);
        if (control !== null)
          line = line.slice(0, length >> 1) + String.fromCharCode(control) + line.slice(length >> 1);
        const started = performance.now();
        assert.throws(
          () => parseCommand(line),
          (err: unknown) =>
            err instanceof DropwatchError && err.code === 'E_BAD_INPUT' && /^line too long/.test(err.message),
        );
        assert.ok(performance.now() - started < 50, 'refused without scanning it expensively');
      },
    ),
    { numRuns: 200 },
  );
  parsesOrRejects('x'.repeat(64 * 1024));
});

// Load: a storm of distinct drop locations through the Session with the aggregator the CLI builds
// (`new DropAggregator()` in src/cli/dropwatch.ts, so DEFAULT_MAX_KEYS) and the CLI's text renderer. What is held per
// interval stays under the cap however many locations arrive, and every drop is either on a printed line or counted
// on the overflow line: nothing is dropped silently.
test('storm of 300k distinct locations: bounded per interval, every drop accounted for on screen', async () => {
  const { Session } = await import('../../src/engine/session.js');
  const { DropAggregator, DEFAULT_MAX_KEYS } = await import('../../src/aggregate/index.js');
  const { buildTextRenderer } = await import('../../src/output/text.js');
  const backend = memoryBackend();

  const aggregator = new DropAggregator();
  assert.equal(aggregator.maxKeys, DEFAULT_MAX_KEYS);
  const lines: string[] = [];
  const errors: string[] = [];
  let tick = () => {};
  const session = new Session({
    backend,
    renderer: buildTextRenderer({
      symbols: { lookup: () => null, ready: async () => {} },
      colour: false,
      capabilities: backend.capabilities,
    }),
    aggregator,
    output: { data: (l) => lines.push(l), message: () => {}, error: (l) => errors.push(l) },
    clock: { setInterval: (fn) => ((tick = fn), 1), clearInterval: () => {} },
  });
  await session.run({ name: 'start' });
  const INTERVALS = 15;
  const PER_INTERVAL = 20_000;
  let pc = 0xffffffff81000000n;
  let sent = 0;
  for (let i = 0; i < INTERVALS; i++) {
    const entries = [];
    for (let j = 0; j < PER_INTERVAL; j++)
      entries.push({ origin: 'software' as const, pc: pc++, reason: 'NO_SOCKET', count: 2 });
    sent += 2 * PER_INTERVAL;
    backend.emit({ kind: 'summary', entries });
    assert.ok(aggregator.size <= DEFAULT_MAX_KEYS, `held ${aggregator.size} locations`);
    const before = lines.length;
    tick();
    assert.ok(lines.length - before <= DEFAULT_MAX_KEYS, 'printed at most the cap');
  }
  await session.stop('signal');
  let printed = 0;
  for (const l of lines) printed += Number(/^(\d+) drops at location /.exec(l)?.[1] ?? NaN);
  let overflowed = 0;
  for (const l of errors) overflowed += Number(/^(\d+) drops at \d+\+? more locations not listed/.exec(l)?.[1] ?? 0);
  assert.equal(errors.length, INTERVALS, 'one overflow line per interval');
  assert.ok(Number.isFinite(printed));
  assert.equal(printed + overflowed, sent, 'every drop on a line or on the overflow line');
});
