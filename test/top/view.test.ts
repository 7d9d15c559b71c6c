// The Ink component through ink-testing-library: what it draws, the keys it passes on, resizes, and colour.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createElement as h } from 'react';
import chalk from 'chalk';
import { cleanup, render } from 'ink-testing-library';
import { TopApp, toneProps } from '../../src/top/view.js';
import { TopController } from '../../src/top/controller.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { SOFTWARE_ONLY } from '../helpers/backend.js';

afterEach(() => cleanup());

const settle = () => new Promise((r) => setTimeout(r, 30));
/** Waits until the screen passes `check` (a loaded machine renders late), or fails with the last screen. */
async function until(screen: () => string, check: (s: string) => boolean): Promise<string> {
  const deadline = Date.now() + 3000;
  while (!check(screen())) {
    if (Date.now() > deadline) assert.fail(`screen never matched:\n${screen()}`);
    await settle();
  }
  return screen();
}
const ESC = '\u001b';
const sw = (pc: bigint, count: number, reason = 'NO_SOCKET'): SummaryEntry => ({
  origin: 'software',
  pc,
  reason,
  count,
});

function mount(colour = false) {
  const controller = new TopController({
    backend: 'tracefs',
    capabilities: SOFTWARE_ONLY,
    label: (d) => (d.pc === 9n ? `${'very_long_symbol_name_'.repeat(6)}+0x9` : `fn${d.pc}+0x1`),
    now: Date.now,
  });
  const app = render(h(TopApp, { controller, colour }));
  const interval = async (...lines: SummaryEntry[]) => {
    controller.observer.interval!({ lines, overflow: null });
    await settle();
  };
  const key = async (input: string) => {
    app.stdin.write(input);
    await settle();
  };
  const screen = () => app.lastFrame() ?? '';
  return { controller, app, interval, key, screen };
}

test('draws a row per site, sorted by rate, with its sparkline', async () => {
  const { interval, screen } = mount();
  await interval(sw(1n, 10), sw(2n, 40));
  await interval(sw(1n, 50), sw(2n, 20));
  const rows = (await until(screen, (s) => /fn2/.test(s))).split('\n').filter((l) => /fn\d\+0x1/.test(l));
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, /^\s+1\s+50\s+60\s+▂█ fn1\+0x1\s+software NO_SOCKET/);
  assert.match(rows[1]!, /^\s+2\s+20\s+60\s+█▄ fn2\+0x1/);
});

test('keys reach the view: s sorts, arrows select, Enter expands, p pauses, q quits', async () => {
  const { controller, interval, key, screen } = mount();
  let quit = false;
  controller.onQuit(() => (quit = true));
  await interval(sw(1n, 100), sw(2n, 1), sw(3n, 50));
  await interval(sw(2n, 500));
  await key('s');
  await until(screen, (s) => /total▼/.test(s));
  await key(`${ESC}[B`);
  await until(screen, (s) => /^>\s*1\s.*fn2\+0x1/m.test(s));
  await key(`${ESC}[B`);
  await key('\r');
  await until(screen, (s) => /^>\s*2\s.*fn1\+0x1/m.test(s) && /NO_SOCKET\s+0\/s\s+100 total/.test(s));
  await key('p');
  await until(screen, (s) => /PAUSED/.test(s));
  await interval(sw(1n, 1000));
  await settle();
  assert.doesNotMatch(screen(), /1,100/, 'the screen holds still while paused');
  await key('p');
  await until(screen, (s) => /1,100/.test(s));
  await key('q');
  for (let i = 0; i < 100 && !quit; i++) await settle();
  assert.equal(quit, true);
});

test('follows resizes; long names are cut in the middle, never wrapped', async () => {
  const { app, interval, screen } = mount();
  await interval(sw(9n, 5));
  const wide = (await until(screen, (s) => /\+0x9/.test(s))).split('\n');
  assert.ok(wide.some((l) => /very_long_symbol.*….*\+0x9/.test(l)));
  for (const line of wide) assert.ok(Array.from(line).length <= 100, line);
  Object.defineProperty(app.stdout, 'columns', { value: 60, configurable: true });
  Object.defineProperty(app.stdout, 'rows', { value: 12, configurable: true });
  app.stdout.emit('resize');
  const narrow = (await until(screen, (s) => s.split('\n').length === 11)).split('\n');
  for (const line of narrow) assert.ok(Array.from(line).length <= 60, line);
  assert.doesNotMatch(screen(), /last \d+s/, 'no room for the sparkline');
  assert.equal(narrow.filter((l) => /\+0x9/.test(l)).length, 1);
});

test('without colour not one escape sequence; with it, losses in red', async () => {
  const level = chalk.level;
  chalk.level = 1;
  try {
    const plain = mount(false);
    await plain.interval(sw(1n, 1));
    plain.controller.observer.lost!(5, 'cpu0');
    await until(plain.screen, (s) => s.includes('LOST 5 (cpu0)'));
    assert.ok(!plain.screen().includes(ESC), JSON.stringify(plain.screen()));
    const coloured = mount(true);
    await coloured.interval(sw(1n, 1));
    coloured.controller.observer.lost!(5, 'cpu0');
    await until(coloured.screen, (s) => s.includes('LOST 5 (cpu0)'));
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
