// Pure parser tests: error_log and per-CPU stats as captured from this kernel, plus the clock-offset calibration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  lostFromStats,
  parseCpuStats,
  parseEventFormat,
  parseHeaderEvent,
  parseLastErrorLog,
  parsePrintSymbolic,
} from '../../src/tracefs/format.js';
import { wallClockOffset, type Clock } from '../../src/tracefs/clock.js';
import { DropwatchError } from '../../src/errors/index.js';
import { fixturePath } from '../helpers/paths.js';

const fixture = (p: string): string => readFileSync(fixturePath('tracefs', p), 'utf8');

test('error_log: the last entry becomes message, command and 1-based column', () => {
  const text = fixture('basic/error_log');
  assert.deepEqual(parseLastErrorLog(text), { message: 'Field not found', command: 'nosuchfield == 1', column: 13 });
  const first = text.split('\n').slice(0, 3).join('\n');
  assert.deepEqual(parseLastErrorLog(first), { message: 'Invalid operator', command: 'reason = = 3', column: 9 });
  assert.equal(parseLastErrorLog(''), null);
});

test('per-CPU stats: overrun from the overrun capture, all losses summed', () => {
  const s = parseCpuStats(fixture('overrun/cpu0.stats'));
  assert.ok(s.overrun > 0);
  assert.equal(s.commitOverrun, 0);
  assert.equal(s.droppedEvents, 0);
  assert.equal(lostFromStats(s), s.overrun);
  assert.equal(lostFromStats({ entries: 0, overrun: 1, commitOverrun: 2, droppedEvents: 4, readEvents: 9 }), 7);
  assert.throws(
    () => parseCpuStats('garbage'),
    (e: unknown) => e instanceof DropwatchError && e.code === 'E_DECODE',
  );
});

test('print fmt: every __print_symbolic table is read, whatever the numbering', () => {
  const m = parsePrintSymbolic(
    '"%s %s", __print_symbolic(REC->a, { 7, "SEVEN" }, { 0x10, "SIXTEEN" }), __print_symbolic(REC->b, { -1, "NEG" })',
  );
  assert.deepEqual(
    [...m],
    [
      [7, 'SEVEN'],
      [16, 'SIXTEEN'],
      [-1, 'NEG'],
    ],
  );
  // This kernel's table, not a hard-coded one: NOT_SPECIFIED is 2 here.
  const fmt = parseEventFormat(fixture('basic/format'));
  assert.equal(fmt.symbols.get(2), 'NOT_SPECIFIED');
});

test('malformed description files are E_DECODE, not garbage layouts', () => {
  const isDecode = (e: unknown): boolean => e instanceof DropwatchError && e.code === 'E_DECODE';
  assert.throws(() => parseEventFormat('name: x\n'), isDecode);
  assert.throws(() => parseHeaderEvent('# compressed entry header\n\ttype_len    :    5 bits\n'), isDecode);
  // Older kernels print no time_stamp line: it is the type after time_extend.
  const old = fixture('basic/header_event').replace(/\ttime_stamp.*\n/, '');
  assert.equal(parseHeaderEvent(old).timeStamp, 31);
});

test('wall-clock offset is taken at a realtime tick edge: microsecond error from a millisecond clock', () => {
  const trueOffset = 1_700_000_000_000_000_000n; // realtime - monotonic
  let mono = 5_000_000_123_456n;
  const clock: Clock = {
    monotonicNs: () => (mono += 97n), // every read costs ~100 ns
    realtimeNs: () => {
      mono += 97n;
      return ((mono + trueOffset) / 1_000_000n) * 1_000_000n; // Date.now()-like: whole milliseconds
    },
  };
  const off = wallClockOffset(clock);
  const err = off > trueOffset ? off - trueOffset : trueOffset - off;
  assert.ok(err < 1_000n, `offset error ${err} ns`);
});
