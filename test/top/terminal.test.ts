// Where the live view may run, decided before the terminal library loads: a terminal, one that can move the cursor,
// and whether its locale can show UTF-8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { terminalRefusal, utf8Locale } from '../../src/top/terminal.js';

const tty = { stdin: { isTTY: true, setRawMode: () => {} }, stdout: { isTTY: true } };

test('the locale is UTF-8 as setlocale reads it: LC_ALL, else LC_CTYPE, else LANG', () => {
  assert.equal(utf8Locale({ LANG: 'C.UTF-8' }), true);
  assert.equal(utf8Locale({ LANG: 'en_US.utf8' }), true);
  assert.equal(utf8Locale({ LANG: 'C' }), false);
  assert.equal(utf8Locale({}), false, 'no locale at all is the C locale');
  assert.equal(utf8Locale({ LANG: 'de_DE.UTF-8', LC_ALL: 'C' }), false);
  assert.equal(utf8Locale({ LANG: 'C', LC_CTYPE: 'en_GB.UTF-8' }), true);
  assert.equal(utf8Locale({ LC_ALL: '', LC_CTYPE: '', LANG: 'fr_FR.UTF-8' }), true, 'an empty variable is unset');
});

test('a terminal that cannot move the cursor (TERM=dumb) is refused in one line, as no terminal is', () => {
  assert.equal(terminalRefusal({ ...tty, env: { TERM: 'xterm' } }, '--top'), null);
  assert.equal(terminalRefusal({ ...tty, env: {} }, '--top'), null);
  const dumb = terminalRefusal({ ...tty, env: { TERM: 'dumb' } }, '--top');
  assert.equal(dumb?.code, 'E_NO_TTY');
  assert.equal(
    dumb?.message,
    '--top needs a terminal that can move the cursor (TERM=dumb); for a log or a pipe use -s (-s -f json for JSON Lines)',
  );
  assert.match(
    terminalRefusal({ ...tty, env: { TERM: 'dumb' } }, 'top')?.message ?? '',
    /^top needs a terminal that can move the cursor \(TERM=dumb\); use start/,
  );
  const piped = terminalRefusal({ stdin: { isTTY: true }, stdout: {}, env: { TERM: 'xterm' } }, '--top');
  assert.match(piped?.message ?? '', /^--top needs a terminal;/);
});
