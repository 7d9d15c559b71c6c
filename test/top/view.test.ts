// The Ink component through ink-testing-library: what it draws, the keys it passes on, resizes, and colour.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { act, createElement as h } from 'react';
import chalk from 'chalk';
import { cleanup, render } from 'ink-testing-library';
import { TopApp, toneProps } from '../../src/top/view.js';
import { TopController } from '../../src/top/controller.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { SOFTWARE_ONLY } from '../helpers/backend.js';

// Every change goes through React's act(), which runs the renders and effects it schedules before it resolves: a
// frame is read once it is drawn, with no waiting on the clock. act() needs React's development build (any NODE_ENV
// but production).
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
afterEach(() => act(async () => cleanup()));

/** The screen, which must pass `check`. */
function expectScreen(screen: () => string, check: (s: string) => boolean): string {
  const s = screen();
  if (!check(s)) assert.fail(`screen did not match:\n${s}`);
  return s;
}
const ESC = '\u001b';
const sw = (pc: bigint, count: number, reason = 'NO_SOCKET'): SummaryEntry => ({
  origin: 'software',
  pc,
  reason,
  count,
});

async function mount(colour = false) {
  const controller = new TopController({
    backend: 'tracefs',
    capabilities: SOFTWARE_ONLY,
    label: (d) => (d.pc === 9n ? `${'very_long_symbol_name_'.repeat(6)}+0x9` : `fn${d.pc}+0x1`),
    now: Date.now,
  });
  const app = await act(async () => render(h(TopApp, { controller, colour })));
  const interval = (...lines: SummaryEntry[]) =>
    act(async () => controller.observer.interval!({ lines, overflow: null }));
  const key = (input: string) => act(async () => app.stdin.write(input));
  const lost = (count: number, where: string) => act(async () => controller.observer.lost!(count, where));
  const screen = () => app.lastFrame() ?? '';
  return { controller, app, interval, key, lost, screen };
}

test('draws a row per site, sorted by rate, with its sparkline', async () => {
  const { interval, screen } = await mount();
  await interval(sw(1n, 10), sw(2n, 40));
  await interval(sw(1n, 50), sw(2n, 20));
  const rows = expectScreen(screen, (s) => /fn2/.test(s))
    .split('\n')
    .filter((l) => /fn\d\+0x1/.test(l));
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, /^\s+1\s+50\s+60\s+▂█ fn1\+0x1\s+software NO_SOCKET/);
  assert.match(rows[1]!, /^\s+2\s+20\s+60\s+█▄ fn2\+0x1/);
});

test('keys reach the view: s sorts, arrows select, Enter expands, p pauses, q quits', async () => {
  const { controller, interval, key, screen } = await mount();
  let quit = false;
  controller.onQuit(() => (quit = true));
  await interval(sw(1n, 100), sw(2n, 1), sw(3n, 50));
  await interval(sw(2n, 500));
  await key('s');
  expectScreen(screen, (s) => /total▼/.test(s));
  await key(`${ESC}[B`);
  expectScreen(screen, (s) => /^>\s*1\s.*fn2\+0x1/m.test(s));
  await key(`${ESC}[B`);
  await key('\r');
  expectScreen(screen, (s) => /^>\s*2\s.*fn1\+0x1/m.test(s) && /NO_SOCKET\s+0\/s\s+100 total/.test(s));
  await key('p');
  expectScreen(screen, (s) => /PAUSED/.test(s));
  await interval(sw(1n, 1000));
  assert.doesNotMatch(screen(), /1,100/, 'the screen holds still while paused');
  await key('p');
  expectScreen(screen, (s) => /1,100/.test(s));
  await key('q');
  assert.equal(quit, true);
});

test('follows resizes; long names are cut in the middle, never wrapped', async () => {
  const { app, interval, screen } = await mount();
  await interval(sw(9n, 5));
  const wide = expectScreen(screen, (s) => /\+0x9/.test(s)).split('\n');
  assert.ok(wide.some((l) => /very_long_symbol.*….*\+0x9/.test(l)));
  for (const line of wide) assert.ok(Array.from(line).length <= 100, line);
  Object.defineProperty(app.stdout, 'columns', { value: 60, configurable: true });
  Object.defineProperty(app.stdout, 'rows', { value: 12, configurable: true });
  await act(async () => app.stdout.emit('resize'));
  const narrow = expectScreen(screen, (s) => s.split('\n').length === 11).split('\n');
  for (const line of narrow) assert.ok(Array.from(line).length <= 60, line);
  assert.doesNotMatch(screen(), /last \d+s/, 'no room for the sparkline');
  assert.equal(narrow.filter((l) => /\+0x9/.test(l)).length, 1);
});

test('without colour not one escape sequence; with it, losses in red', async () => {
  const level = chalk.level;
  chalk.level = 1;
  try {
    const plain = await mount(false);
    await plain.interval(sw(1n, 1));
    await plain.lost(5, 'cpu0');
    expectScreen(plain.screen, (s) => s.includes('LOST 5 (cpu0)'));
    assert.ok(!plain.screen().includes(ESC), JSON.stringify(plain.screen()));
    const coloured = await mount(true);
    await coloured.interval(sw(1n, 1));
    await coloured.lost(5, 'cpu0');
    expectScreen(coloured.screen, (s) => s.includes('LOST 5 (cpu0)'));
    // Red and bold, in whichever order chalk nests them.
    assert.match(coloured.screen(), /(\u001b\[(1|31)m){2}LOST 5 \(cpu0\)/);
    assert.match(coloured.screen(), /\u001b\[31m/);
  } finally {
    chalk.level = level;
  }
  assert.deepEqual(toneProps('lost', false), {});
  assert.deepEqual(toneProps('lost', true), { color: 'red', bold: true });
  assert.deepEqual(toneProps(undefined, true), {});
});
