// The live view's screen as data: truncation, sparklines, numbers, and whole frames that fit any terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CELLS_SHOWN,
  INITIAL_VIEW_STATE,
  buildFrame,
  cutMiddle,
  fitNumber,
  formatDuration,
  locationLabel,
  sparkline,
  ASCII_SPARK_LEVELS,
  type Describe,
  type Line,
  type ViewState,
} from '../../src/top/layout.js';
import { TopModel, type SiteDrop } from '../../src/top/model.js';
import { memoryWorkloadNames } from '../helpers/workload.js';

const text = (line: Line) => line.map((s) => s.text).join('');
const cells = (s: string) => Array.from(s).length;

const STATE: ViewState = INITIAL_VIEW_STATE;
const DESCRIBE: Describe = { backend: 'tracefs', filter: null, elapsedSeconds: 65, stacks: false, flows: false };

function model(drops: SiteDrop[][], labels: Record<string, string> = {}): TopModel {
  const m = new TopModel({ label: (d) => labels[d.pc.toString()] ?? `sym_${d.pc}+0x10` });
  for (const batch of drops) {
    m.add(batch);
    m.tick();
  }
  return m;
}
const sw = (pc: bigint, count: number, reason: string | null = 'NO_SOCKET'): SiteDrop => ({
  origin: 'software',
  pc,
  reason,
  count,
});

test('cutMiddle keeps the start and the end of a long name', () => {
  assert.equal(cutMiddle('short', 10), 'short');
  assert.equal(cutMiddle('__udp4_lib_rcv+4bc', 11), '__udp…v+4bc');
  assert.equal(cutMiddle('abcdef', 1), '…');
  assert.equal(cutMiddle('abcdef', 0), '');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme-ascii', maxLength: 80 }), fc.nat({ max: 90 }), (s, w) => {
      const cut = cutMiddle(s, w);
      assert.ok(cells(cut) <= w || cells(s) <= w);
      if (cells(s) <= w) assert.equal(cut, s);
      else if (w >= 3) {
        const [head, tail] = cut.split('…') as [string, string];
        assert.ok(s.startsWith(head) && s.endsWith(tail));
      }
    }),
  );
});

test('sparkline: one cell per second, scaled to the row’s peak, blank for none, right-aligned', () => {
  assert.equal(sparkline([0, 1, 2, 4, 8], 5), ' ▁▂▄█');
  assert.equal(sparkline([1, 1000], 2), '▁█', 'any drop shows at least the lowest bar');
  assert.equal(sparkline([3, 3], 4), '  ██');
  assert.equal(sparkline([5, 6, 7], 2), '▇█', 'a narrow column shows the latest seconds');
  assert.equal(sparkline([0, 0], 2), '  ');
});

test('numbers fit their column; durations read like top', () => {
  assert.equal(fitNumber(1234, 8), '1,234');
  assert.equal(fitNumber(12_345_678, 8), '12.3M');
  assert.equal(fitNumber(999_999_999_999, 6), '1000G');
  assert.equal(formatDuration(5), '5s');
  assert.equal(formatDuration(65), '1m05s');
  assert.equal(formatDuration(7260), '2h01m');
  assert.equal(formatDuration(90_000), '1d01h');
});

test('a location is sym+off with its module, a trap name, or an address', () => {
  const lookup = (pc: bigint) =>
    pc === 1n
      ? { symbol: 'mlx5e_xmit', offset: 0x4bcn, module: 'mlx5_core' }
      : pc === 2n
        ? { symbol: 'f', offset: 0n }
        : null;
  assert.equal(locationLabel(sw(1n, 1), lookup), 'mlx5e_xmit+4bc [mlx5_core]');
  assert.equal(locationLabel(sw(2n, 1), lookup), 'f+0');
  assert.equal(locationLabel(sw(0xffn, 1), lookup), '0xff');
  assert.equal(locationLabel({ ...sw(0xffn, 1), symbol: 'g+0x1/0x20' }, lookup), 'g+0x1/0x20');
  assert.equal(locationLabel(sw(0n, 1), lookup), 'device rx_dropped counter');
  assert.equal(
    locationLabel({ origin: 'hardware', pc: 0n, trap: 'ttl_error', reason: null, count: 1 }, lookup),
    'ttl_error',
  );
});

test('a frame: header, one row per site sorted by rate, footer; one line short of the terminal', () => {
  const m = model([
    [sw(1n, 10), sw(2n, 30)],
    [sw(1n, 100), sw(2n, 20)],
  ]);
  const { lines } = buildFrame(m, STATE, DESCRIBE, { columns: 120, rows: 20 });
  assert.equal(lines.length, 19);
  assert.match(text(lines[0]!), /^dropwatch top {2}tracefs {2}running 1m05s/);
  assert.match(text(lines[1]!), /^drops\/s 120 now, 80 since start {2}total 160 {2}sites 2 {2}lost 0$/);
  assert.match(text(lines[2]!), /^filter none {2}sort rate$/);
  assert.match(text(lines[3]!), /#\s+drops\/s▼\s+total last 60s\s+location\s+origin\s+reason/);
  assert.match(text(lines[4]!), /^ {2}1 {6}100 {8}110 .*▁█ sym_1\+0x10 +software NO_SOCKET/);
  assert.match(text(lines[5]!), /^ {2}2 {7}20 {9}50 .*█▆ sym_2\+0x10 +software NO_SOCKET/);
  assert.match(text(lines.at(-1)!), /^q quit {2}p pause/);
});

test('losses are shouted and toned, never hidden', () => {
  const m = model([[sw(1n, 1)]]);
  const quiet = buildFrame(m, STATE, DESCRIBE, { columns: 100, rows: 20 }).lines[1]!;
  assert.equal(quiet.at(-1)!.text, 'lost 0');
  assert.equal(quiet.at(-1)!.tone, undefined);
  m.lost(12, 'tracefs ring buffer cpu1');
  const loud = buildFrame(m, STATE, DESCRIBE, { columns: 100, rows: 20 }).lines[1]!;
  assert.equal(loud.at(-1)!.text, 'LOST 12 (tracefs ring buffer cpu1)');
  assert.equal(loud.at(-1)!.tone, 'lost');
});

test('long names are cut in the middle on one line, never wrapped', () => {
  const long = 'a_very_long_kernel_function_name_that_goes_on_and_on_and_on+0x1234 [some_module]';
  const m = model([[sw(1n, 1)]], { '1': long });
  const { lines } = buildFrame(m, STATE, DESCRIBE, { columns: 100, rows: 12 });
  const row = text(lines[4]!);
  assert.ok(cells(row) <= 100);
  assert.match(row, /a_very_long_kernel_f.*….*\[some_module\]/);
  assert.equal(lines.length, 11);
});

test('narrow terminals lose the sparkline first, and every line still fits', () => {
  const m = model([[sw(1n, 5)]]);
  const wide = text(buildFrame(m, STATE, DESCRIBE, { columns: 120, rows: 12 }).lines[3]!);
  const narrow = text(buildFrame(m, STATE, DESCRIBE, { columns: 60, rows: 12 }).lines[3]!);
  assert.match(wide, /last \d+s/);
  assert.doesNotMatch(narrow, /last \d+s/);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 80 }), (columns, rows) => {
      const { lines } = buildFrame(m, STATE, DESCRIBE, { columns, rows });
      for (const line of lines) assert.ok(cells(text(line)) <= columns, text(line));
      assert.equal(lines.length, Math.max(1, rows - 1));
    }),
  );
});

test('the selection is marked and kept on screen; an expanded row lists its reasons', () => {
  const drops = Array.from({ length: 40 }, (_, i) => sw(BigInt(i + 1), 100 - i));
  const m = model([drops, [sw(40n, 7, 'NETFILTER_DROP')]]);
  const state = {
    ...STATE,
    sort: 'total' as const,
    selected: 'software\u000028\u0000',
    expanded: 'software\u000028\u0000',
  };
  const { lines, scroll } = buildFrame(m, state, DESCRIBE, { columns: 100, rows: 16 });
  assert.ok(scroll > 0, 'scrolled to the selection');
  const at = lines.findIndex((l) => text(l).startsWith('>'));
  assert.match(text(lines[at]!), /^>\s*33 .* sym_40\+0x10/, 'rank 33: the 32 sites with more drops come first');
  assert.equal(lines[at]![0]!.tone, 'selected');
  const after = lines.slice(at + 1, at + 5).map(text);
  assert.ok(
    after.some((l) => /NO_SOCKET\s+0\/s\s+61 total/.test(l)),
    after.join('\n'),
  );
  assert.ok(
    after.some((l) => /NETFILTER_DROP\s+7\/s\s+7 total/.test(l)),
    after.join('\n'),
  );
  assert.ok(after.some((l) => /call chains: not reported by the tracefs backend/.test(l)));
  assert.ok(lines.findIndex((l) => /^q quit/.test(text(l))) === lines.length - 1, 'the footer stays');
});

test('an expanded row lists its call chains, most taken first, cut in the middle to the width; the rest summed', () => {
  const m = new TopModel({ label: () => 'udp', chainLabel: (frames) => frames.map((f) => `fn${f}+1`).join(' < ') });
  const chain = (frames: bigint[], count: number) => ({ frames, count });
  m.add([
    {
      ...sw(1n, 10),
      stacks: { sampled: 8, chains: [chain([1n, 2n], 2), chain([3n, 4n], 5), chain([5n], 1)] },
    },
  ]);
  m.add([{ ...sw(1n, 4), stacks: { sampled: 3, chains: [chain([1n, 2n], 3)] } }]);
  m.tick();
  const key = 'software\u00001\u0000';
  const d = { ...DESCRIBE, stacks: true };
  const expanded = { ...STATE, selected: key, expanded: key };
  const all = buildFrame(m, expanded, d, { columns: 100, rows: 16 }).lines.map(text);
  const at = all.findIndex((l) => /call chains of 11 sampled drops:/.test(l));
  assert.ok(at > 0, all.join('\n'));
  assert.match(all[at + 1]!, /5 {2}fn1\+1 < fn2\+1$/);
  assert.match(all[at + 2]!, /5 {2}fn3\+1 < fn4\+1$/);
  assert.match(all[at + 3]!, /1 {2}fn5\+1$/);
  assert.equal(all.filter((l) => /more in other chains/.test(l)).length, 0, 'three chains: all shown');
  const narrow = buildFrame(m, expanded, d, { columns: 40, rows: 16 }).lines.map(text);
  for (const line of narrow) assert.ok(Array.from(line).length <= 40, line);
  const none = new TopModel({ label: () => 'udp' });
  none.add([sw(1n, 3)]);
  none.tick();
  const unsampled = buildFrame(none, expanded, d, { columns: 100, rows: 16 }).lines.map(text);
  assert.ok(unsampled.some((l) => /call chains: none sampled/.test(l)));
});

test('pause, filter, the filter being typed and its error show in the frame', () => {
  const m = model([[sw(1n, 1)]]);
  const size = { columns: 100, rows: 12 };
  const paused = buildFrame(m, { ...STATE, paused: true }, DESCRIBE, size).lines[0]!;
  assert.deepEqual(paused.at(-1), { text: 'PAUSED', tone: 'paused' });
  const filtered = buildFrame(m, STATE, { ...DESCRIBE, filter: 'reason == NO_SOCKET (kernel: reason == 3)' }, size);
  assert.match(text(filtered.lines[2]!), /^filter reason == NO_SOCKET \(kernel: reason == 3\)/);
  const typing = buildFrame(
    m,
    { ...STATE, input: 'reason === x', status: { text: "filter: unknown operator '='", error: true } },
    DESCRIBE,
    size,
  ).lines;
  assert.equal(text(typing.at(-2)!), '/ filter: reason === x█');
  assert.deepEqual(typing.at(-1), [{ text: "filter: unknown operator '='", tone: 'error' }]);
});

test('a terminal too small says so instead of drawing a broken table', () => {
  const { lines } = buildFrame(model([[sw(1n, 1)]]), STATE, DESCRIBE, { columns: 30, rows: 5 });
  assert.equal(lines.length, 4);
  assert.equal(text(lines[0]!), 'terminal too small for dropwa…');
});

test('help replaces the rows', () => {
  const m = model([[sw(1n, 1)]]);
  const { lines } = buildFrame(m, { ...STATE, help: true }, DESCRIBE, { columns: 100, rows: 30 });
  const all = lines.map(text).join('\n');
  assert.match(all, /q, Ctrl-C +quit/);
  assert.doesNotMatch(all, /sym_1/);
});

test('the header writes every number one way: thousands separated, no stray decimals', () => {
  const m = model([[sw(1n, 73_908)], [sw(1n, 81_725)]]);
  const header = text(buildFrame(m, STATE, DESCRIBE, { columns: 120, rows: 20 }).lines[1]!);
  assert.match(header, /^drops\/s 81,725 now, 77,817 since start {2}total 155,633 /);
  // A slow trickle keeps its tenth rather than rounding to nothing.
  const slow = model([[sw(1n, 1)], [], [], []]);
  assert.match(text(buildFrame(slow, STATE, DESCRIBE, { columns: 120, rows: 20 }).lines[1]!), / 0\.3 since start /);
});

test('without a UTF-8 locale every frame is ASCII: bars, sort mark, cuts, arrows, cursor', () => {
  const ascii: Describe = { ...DESCRIBE, ascii: true, stacks: true };
  const long = 'a_very_long_kernel_function_name_that_goes_on_and_on_and_on+0x1234 [some_module]';
  const m = model(
    [
      [sw(1n, 10), sw(2n, 30)],
      [sw(1n, 100), sw(2n, 20)],
    ],
    { '1': long },
  );
  const frames = [
    buildFrame(m, STATE, ascii, { columns: 100, rows: 20 }),
    buildFrame(m, { ...STATE, help: true }, ascii, { columns: 100, rows: 20 }),
    buildFrame(m, { ...STATE, input: 'reason == NO_SOCKET' }, ascii, { columns: 100, rows: 20 }),
    buildFrame(m, { ...STATE, selected: '1', expanded: '1' }, ascii, { columns: 100, rows: 20 }),
    buildFrame(m, STATE, { ...ascii, filter: 'symbol =~ /caf\u00e9/' }, { columns: 100, rows: 20 }),
    buildFrame(m, STATE, ascii, { columns: 20, rows: 5 }),
  ];
  for (const { lines } of frames)
    for (const line of lines) assert.match(text(line), /^[\x20-\x7e]*$/, JSON.stringify(text(line)));
  const [main, help, input, , , small] = frames.map((f) => f.lines.map(text));
  assert.match(main![3]!, /drops\/s\*/);
  assert.match(main![4]!, /\.@ a_very_long_kernel_f.*~.*\[some_module\]/);
  assert.match(main!.at(-1)!, /Up\/Down select/);
  assert.ok(help!.some((l) => /^ {2}Up, Down {4}select a row/.test(l)));
  assert.ok(input!.some((l) => l === '/ filter: reason == NO_SOCKET_'));
  assert.match(small![0]!, /^terminal too small ~$/);
  assert.equal(sparkline([0, 1, 2, 4, 8], 5, ASCII_SPARK_LEVELS), ' .:=@');
});

/** Drops in two namespaces: two sites and reasons in `blue` (200), one in `host` (100), over two intervals. */
function placed(): TopModel {
  const m = new TopModel({ label: (d) => `sym_${d.pc}+0x10` });
  const at = (netns: number, ifindex: number, ifname: string, count: number) => ({ netns, ifindex, ifname, count });
  m.add([
    { ...sw(1n, 10), places: [at(200, 5, 'veth-b', 6), at(100, 1, 'lo', 4)] },
    { ...sw(2n, 3, 'NETFILTER_DROP'), places: [at(200, 5, 'veth-b', 3)] },
  ]);
  m.tick();
  m.add([{ ...sw(1n, 2), places: [at(200, 5, 'veth-b', 2)] }]);
  m.tick();
  return m;
}
const PLACED: Describe = {
  ...DESCRIBE,
  backend: 'bpf',
  workloads: memoryWorkloadNames({ 100: { netnsName: 'host' }, 200: { netnsName: 'blue' } }),
};

test('grouped by namespace: one row a namespace by its name, the heading and header say so; g in the footer', () => {
  const m = placed();
  const lines = buildFrame(m, { ...STATE, group: 'netns' }, PLACED, { columns: 120, rows: 20 }).lines.map(text);
  assert.match(lines[2]!, /^filter none {2}sort rate {2}group netns$/);
  assert.match(lines[3]!, /#\s+drops\/s▼\s+total last 60s\s+netns\s+sites\s+reason$/);
  assert.match(lines[4]!, /^ {2}1 {8}2 {9}11 .* blue +2 +NO_SOCKET \+1$/);
  assert.match(lines[5]!, /^ {2}2 {8}0 {10}4 .* host +1 +NO_SOCKET$/);
  assert.match(lines.at(-1)!, /g group/);
  const location = buildFrame(m, STATE, PLACED, { columns: 120, rows: 20 }).lines.map(text);
  assert.match(location[2]!, /^filter none {2}sort rate$/, 'by location the header is as before');
  assert.match(location[3]!, /location\s+origin\s+reason$/);
  const help = buildFrame(m, { ...STATE, help: true }, PLACED, { columns: 100, rows: 30 }).lines.map(text);
  assert.ok(help.some((l) => /^ {2}g {11}group rows by location, workload, netns, device, reason in turn/.test(l)));
});

test('grouped by device, workload and reason: the column says which, the rows name what the seam knows', () => {
  const m = placed();
  const rows = (group: ViewState['group'], d = PLACED) =>
    buildFrame(m, { ...STATE, group, sort: 'total' }, d, { columns: 120, rows: 20 }).lines.map(text);
  const device = rows('device');
  assert.match(device[3]!, / device\s+sites\s+reason$/);
  assert.match(device[4]!, / veth-b in blue +2 +NO_SOCKET \+1$/);
  assert.match(device[5]!, / lo in host +1 +NO_SOCKET$/);
  const workload = rows('workload');
  assert.match(workload[3]!, / workload\s+sites\s+reason$/);
  assert.match(workload[4]!, / blue +2/);
  const unnamed = rows('netns', { ...PLACED, workloads: null });
  assert.match(unnamed[4]!, / netns 200 +2 /, 'without the seam a namespace is its inode');
  const reason = rows('reason');
  assert.match(reason[3]!, / reason\s+sites\s+top site$/);
  assert.match(reason[4]!, / NO_SOCKET +1 +sym_1\+0x10$/);
  assert.match(reason[5]!, / NETFILTER_DROP +1 +sym_2\+0x10$/);
});

test('an expanded group lists its drop sites and reasons, most drops first; Enter on a site row is unchanged', () => {
  const m = placed();
  const [blue] = m.groupRows('netns', 'rate', PLACED.workloads);
  const state: ViewState = { ...STATE, group: 'netns', selected: blue!.key, expanded: blue!.key };
  const lines = buildFrame(m, state, PLACED, { columns: 120, rows: 20 }).lines.map(text);
  const at = lines.findIndex((l) => l.startsWith('>'));
  assert.match(lines[at]!, /^> {0,2}1 .* blue /);
  assert.match(lines[at + 1]!, /^ {4}netns 200$/);
  assert.match(lines[at + 2]!, /^ {6}sym_1\+0x10 +NO_SOCKET +2\/s +8 total$/);
  assert.match(lines[at + 3]!, /^ {6}sym_2\+0x10 +NETFILTER_DROP +0\/s +3 total$/);
  assert.match(lines[at + 4]!, /^ {2}2 .* host /, 'the next row follows the expansion');
  for (const columns of [40, 60, 200]) {
    const frame = buildFrame(m, state, { ...PLACED, ascii: true }, { columns, rows: 20 }).lines.map(text);
    for (const line of frame) {
      assert.ok(cells(line) <= columns, line);
      assert.match(line, /^[\x20-\x7e]*$/, line);
    }
  }
});

test('an expanded group shows its busiest sites, sums the rest on one line, and says when drops had no place', () => {
  const m = new TopModel({ label: (d) => `sym_${d.pc}+0x10` });
  m.add(Array.from({ length: 12 }, (_, i) => sw(BigInt(i + 1), 20 - i)));
  m.tick();
  const [nowhere] = m.groupRows('netns', 'rate');
  assert.equal(nowhere!.label, '(no namespace)');
  const state: ViewState = { ...STATE, group: 'netns', selected: nowhere!.key, expanded: nowhere!.key };
  const lines = buildFrame(m, state, PLACED, { columns: 120, rows: 30 }).lines.map(text);
  const at = lines.findIndex((l) => l.startsWith('>'));
  assert.match(lines[at + 1]!, /^ {4}no network namespace: the drops had no device or socket$/);
  const sites = lines.slice(at + 2).filter((l) => /^ {6}sym_\d+\+0x10 /.test(l));
  assert.deepEqual(
    sites.map((l) => /sym_(\d+)/.exec(l)![1]),
    ['1', '2', '3', '4', '5', '6', '7', '8'],
    'the eight with most drops',
  );
  // Sites 9 to 12 dropped 12 + 11 + 10 + 9.
  assert.equal(lines[at + 2 + CELLS_SHOWN], '      42 more drops at other sites');
});
