// The live view's state machine without a terminal: keys, pause, the filter line, and what the session feeds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopController, type TopFilter } from '../../src/top/controller.js';
import { DropwatchError } from '../../src/errors/index.js';
import type { BackendCapabilities, SummaryEntry } from '../../src/backend/types.js';
import { sources } from '../../src/sources/index.js';
import { memoryWorkloadNames } from '../helpers/workload.js';

const CAPS: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: false, queue: false, hw: false },
  fields: { summary: ['reason'], packet: ['reason', 'protocol', 'time'] },
  reasons: null,
  kernelFilter: null,
};
const SIZE = { columns: 120, rows: 20 };
const sw = (pc: bigint, count: number, reason = 'NO_SOCKET'): SummaryEntry => ({
  origin: 'software',
  pc,
  reason,
  count,
});

function setup(filter?: TopFilter) {
  let now = 1_000_000;
  const c = new TopController({
    backend: 'tracefs',
    capabilities: CAPS,
    label: (d) => `fn${d.pc}+0x1`,
    now: () => now,
    ...(filter ? { filter } : {}),
  });
  let changes = 0;
  c.subscribe(() => changes++);
  const quits: unknown[] = [];
  c.onQuit((err) => quits.push(err ?? 'quit'));
  const interval = (...lines: SummaryEntry[]) => {
    now += 1000;
    c.observer.interval!({ lines, overflow: null });
  };
  const screen = () => c.frame(SIZE).lines.map((l) => l.map((s) => s.text).join(''));
  return { c, interval, screen, quits, changes: () => changes, advance: (ms: number) => (now += ms) };
}

test('each interval redraws; s cycles the sort through rate, total and name', () => {
  const { c, interval, screen, changes } = setup();
  interval(sw(1n, 100), sw(2n, 1));
  interval(sw(2n, 5));
  assert.equal(changes(), 2);
  const order = () =>
    screen()
      .filter((l) => /fn\d/.test(l))
      .map((l) => /fn(\d)/.exec(l)![1]);
  assert.deepEqual(order(), ['2', '1']);
  c.key({ input: 's' });
  assert.equal(c.view.sort, 'total');
  assert.deepEqual(order(), ['1', '2']);
  c.key({ input: 's' });
  assert.equal(c.view.sort, 'name');
  c.key({ input: 's' });
  assert.equal(c.view.sort, 'rate');
});

test('p freezes the screen while counting goes on; p again shows what was counted meanwhile', () => {
  const { c, interval, screen, changes } = setup();
  interval(sw(1n, 10));
  c.key({ input: 'p' });
  const frozen = screen();
  const before = changes();
  interval(sw(1n, 500));
  interval(sw(1n, 500));
  assert.equal(changes(), before, 'no redraw while paused');
  assert.deepEqual(screen(), frozen);
  assert.match(frozen[0]!, /PAUSED$/);
  assert.equal(c.model.total, 1010, 'counting goes on');
  c.key({ input: 'p' });
  assert.match(screen()[1]!, /total 1,010/);
});

test('arrows select, Enter expands the selected row, Esc folds it', () => {
  const { c, interval, screen } = setup();
  interval(sw(1n, 30), sw(2n, 20, 'NETFILTER_DROP'), sw(3n, 10));
  c.key({ input: '', enter: true });
  assert.equal(c.view.expanded, c.view.selected, 'Enter with nothing selected takes the first row');
  c.key({ input: '', escape: true });
  c.key({ input: '', down: true });
  assert.match(
    screen().find((l) => l.startsWith('>'))!,
    /fn2\+0x1/,
  );
  c.key({ input: '', enter: true });
  assert.ok(screen().some((l) => /NETFILTER_DROP\s+20\/s\s+20 total/.test(l)));
  c.key({ input: '', end: true });
  assert.match(
    screen().find((l) => l.startsWith('>'))!,
    /fn3\+0x1/,
  );
  c.key({ input: '', down: true });
  assert.match(
    screen().find((l) => l.startsWith('>'))!,
    /fn3\+0x1/,
    'the last row stays selected',
  );
  c.key({ input: '', home: true });
  assert.match(
    screen().find((l) => l.startsWith('>'))!,
    /fn1\+0x1/,
  );
});

test('q, Ctrl-C and keys arriving in one chunk', () => {
  const a = setup();
  a.c.key({ input: 'sp' });
  assert.equal(a.c.view.sort, 'total');
  assert.equal(a.c.view.paused, true);
  a.c.key({ input: 'q' });
  a.c.key({ input: 'q' });
  assert.deepEqual(a.quits, ['quit'], 'quit is reported once');
  const b = setup();
  b.c.key({ input: 'c', ctrl: true });
  assert.deepEqual(b.quits, ['quit']);
});

test('? shows help and any key closes it without acting', () => {
  const { c, screen, quits } = setup();
  c.key({ input: '?' });
  assert.ok(screen().some((l) => /Keys/.test(l)));
  c.key({ input: 'q' });
  assert.equal(c.view.help, false);
  assert.deepEqual(quits, []);
});

test('/ sets a filter through the filter control; a bad one shows its error and stays editable', async () => {
  const applied: (string | null)[] = [];
  let current: string | null = null;
  const filter: TopFilter = {
    apply: async (text) => {
      applied.push(text);
      if (text === 'reason === x')
        throw new DropwatchError('E_BAD_INPUT', "filter: unknown operator '=' (did you mean '=='?) at column 10");
      current = text;
      return text === null ? 'filter cleared' : `filter set: ${text}`;
    },
    describe: () => current,
  };
  const { c, screen } = setup(filter);
  const settle = () => new Promise((r) => setImmediate(r));
  c.key({ input: '/' });
  c.key({ input: 'reason === x' });
  c.key({ input: '', enter: true });
  await settle();
  assert.equal(c.view.input, 'reason === x');
  assert.equal(c.view.status?.error, true);
  assert.match(screen().at(-1)!, /unknown operator/);
  for (let i = 0; i < 5; i++) c.key({ input: '', backspace: true });
  c.key({ input: '== NO_SOCKET\r' });
  await settle();
  assert.deepEqual(applied, ['reason === x', 'reason == NO_SOCKET']);
  assert.equal(c.view.input, null);
  assert.match(screen()[2]!, /^filter reason == NO_SOCKET/);
  c.key({ input: '/' });
  c.key({ input: 'none' });
  c.key({ input: '', enter: true });
  await settle();
  assert.deepEqual(applied.at(-1), null, '`none` clears, as at the prompt');
  c.key({ input: '/' });
  c.key({ input: 'abc' });
  c.key({ input: '', escape: true });
  assert.equal(c.view.input, null);
  assert.equal(applied.length, 3, 'Esc applies nothing');
});

test('an unexpected failure while applying a filter ends the view with the error', async () => {
  const bug = new TypeError('boom');
  const { c, quits } = setup({ apply: () => Promise.reject(bug), describe: () => null });
  c.key({ input: '/' });
  c.key({ input: 'x\r' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(quits, [bug]);
});

test('packet-mode drops count one each; losses light up the header; session lines become the status', () => {
  const { c, interval, screen } = setup();
  c.observer.packet!({ origin: 'software', pc: 7n, reason: 'NO_SOCKET' });
  c.observer.packet!({ origin: 'software', pc: 7n, reason: 'NO_SOCKET' });
  interval();
  assert.match(
    screen().find((l) => /fn7/.test(l))!,
    /^\s+1\s+2\s+2 /,
  );
  c.observer.lost!(3, 'tracefs ring buffer cpu0');
  assert.match(screen()[1]!, /LOST 3 \(tracefs ring buffer cpu0\)$/);
  c.output.error('Lost 3 drop events before they reached dropwatch (tracefs ring buffer cpu0)');
  assert.match(screen().at(-2)!, /^Lost 3 drop events/);
  c.output.data('3 drops at somewhere');
  assert.ok(!screen().some((l) => l.includes('3 drops at')), 'drop lines are drawn, not printed');
});

/** Capabilities of a source whose summaries say where drops happened (namespace and device). */
const PLACES: BackendCapabilities = {
  ...CAPS,
  fields: { summary: ['reason', 'device'], packet: ['reason', 'device'] },
};
const at = (netns: number, ifindex: number, ifname: string, count: number) => ({ netns, ifindex, ifname, count });

function grouped(capabilities = PLACES, workloads = memoryWorkloadNames({ 100: { netnsName: 'host' } })) {
  let now = 1_000_000;
  const c = new TopController({
    backend: capabilities === PLACES ? 'bpf' : 'tracefs',
    capabilities,
    sources: sources(),
    label: (d) => `fn${d.pc}+0x1`,
    now: () => now,
    workloads,
  });
  const interval = (...lines: SummaryEntry[]) => {
    now += 1000;
    c.observer.interval!({ lines, overflow: null });
  };
  const screen = () => c.frame(SIZE).lines.map((l) => l.map((s) => s.text).join(''));
  return { c, interval, screen, workloads };
}

test('g cycles the grouping: location, workload, netns, device, reason and back; the header says which', () => {
  const { c, interval, screen } = grouped();
  interval({ ...sw(1n, 30), places: [at(100, 1, 'lo', 10), at(4026532999, 7, 'veth-b', 20)] });
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) {
    seen.push(c.view.group);
    c.key({ input: 'g' });
  }
  assert.deepEqual(seen, ['location', 'workload', 'netns', 'device', 'reason']);
  assert.equal(c.view.group, 'location');
  c.key({ input: 'gg' });
  assert.equal(c.view.group, 'netns');
  assert.match(screen()[2]!, /group netns$/);
  const rows = screen().filter((l) => /^[> ]\s*\d+ /.test(l));
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, / netns 4026532999 +1 +NO_SOCKET$/, 'a namespace the seam does not know: its inode');
  assert.match(rows[1]!, / host +1 +NO_SOCKET$/);
  c.key({ input: 'g' });
  assert.ok(screen().some((l) => / veth-b in netns 4026532999 /.test(l)));
});

test('Enter expands the selected workload into its sites and reasons and collapses it again; g starts afresh', () => {
  const { c, interval, screen } = grouped();
  interval(
    { ...sw(1n, 30), places: [at(100, 1, 'lo', 10), at(4026532999, 7, 'veth-b', 20)] },
    { ...sw(2n, 5, 'NETFILTER_DROP'), places: [at(4026532999, 7, 'veth-b', 5)] },
  );
  c.key({ input: 'g' });
  c.key({ input: 'g' });
  c.key({ input: '', down: true });
  c.key({ input: '', down: true });
  assert.match(
    screen().find((l) => l.startsWith('>'))!,
    / host /,
  );
  c.key({ input: '', up: true });
  c.key({ input: '', enter: true });
  const open = screen();
  const sel = open.findIndex((l) => l.startsWith('>'));
  assert.match(open[sel]!, / netns 4026532999 /);
  assert.match(open[sel + 1]!, /^ {4}netns 4026532999$/);
  assert.match(open[sel + 2]!, /fn1\+0x1 +NO_SOCKET +20\/s +20 total$/);
  assert.match(open[sel + 3]!, /fn2\+0x1 +NETFILTER_DROP +5\/s +5 total$/);
  c.key({ input: '', enter: true });
  assert.equal(c.view.expanded, null, 'Enter again collapses it');
  assert.ok(!screen().some((l) => /NETFILTER_DROP +5\/s/.test(l)));
  c.key({ input: '', enter: true });
  c.key({ input: 'g' });
  assert.equal(c.view.expanded, null, 'a new grouping has nothing expanded');
  assert.equal(c.view.selected, null);
});

test('on a source that does not say where drops happened, g says so once, naming the sources that do', () => {
  const { c, interval, screen } = grouped(CAPS);
  interval(sw(1n, 3));
  c.key({ input: 'g' });
  assert.equal(c.view.group, 'location');
  assert.equal(c.view.status?.error, false);
  const said = screen().filter((l) => /namespaces/.test(l));
  assert.equal(said.length, 1);
  assert.match(said[0]!, /tracefs backend reports no network namespaces or devices.*the bpf backend does \(-b bpf\)/);
  c.key({ input: 'g' });
  assert.equal(c.view.group, 'location');
  assert.equal(screen().filter((l) => /namespaces/.test(l)).length, 1);
});

test('packet-mode drops are grouped by their namespace and input device', () => {
  const { c, interval, screen } = grouped();
  c.observer.packet!({
    origin: 'software',
    pc: 7n,
    reason: 'NO_SOCKET',
    netns: 100,
    inPort: { ifindex: 3, name: 'veth-a' },
  });
  c.observer.packet!({ origin: 'software', pc: 7n, reason: 'NO_SOCKET', netns: null });
  interval();
  c.key({ input: 'ggg' });
  assert.equal(c.view.group, 'device');
  const rows = screen().filter((l) => /^[> ]\s*\d+ /.test(l));
  assert.ok(
    rows.some((l) => /^\s+\d+\s+1\s+1 .* veth-a in host /.test(l)),
    rows.join('\n'),
  );
  assert.ok(
    rows.some((l) => / \(no device\) /.test(l)),
    rows.join('\n'),
  );
});

test('the workload seam is asked only while the rows need a name', () => {
  const { c, interval, screen, workloads } = grouped();
  interval({ ...sw(1n, 3), places: [at(100, 1, 'lo', 3)] });
  screen();
  assert.equal(workloads.asked.length, 0, 'by location no name is needed');
  c.key({ input: 'g' });
  screen();
  assert.ok(workloads.asked.includes(100));
});
