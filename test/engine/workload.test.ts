// Naming the workload in the engine: `set by` groups summary lines (refused where the source cannot know a key, or
// where lines are JSON), `show` says the grouping, a filter on a namespace, device, container or task passes only the
// matching places of an entry, and names are made only when a key or a filter asks for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../../src/engine/session.js';
import { createFilterControl, requireKnownFields } from '../../src/engine/filter.js';
import type { WorkloadSource } from '../../src/engine/types.js';
import { DropAggregator } from '../../src/aggregate/index.js';
import { complete, helpText, parseCommand } from '../../src/engine/commands.js';
import type { BackendCapabilities, DropPlace, SummaryEntry } from '../../src/backend/types.js';
import { buildTextRenderer } from '../../src/output/text.js';
import { parse } from '../../src/filter/index.js';
import { DropwatchError } from '../../src/errors/index.js';
import { sources } from '../../src/sources/index.js';
import { memoryBackend, SOFTWARE_ONLY } from '../helpers/backend.js';
import { BLUE, CART, HOST, memoryWorkloadNames, SAMPLE, WEB, type MemoryWorkloadNames } from '../helpers/workload.js';

/** bpf-like: summaries with places (namespace, device, task). */
const PLACES: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: true, queue: false, hw: false },
  fields: { summary: ['reason', 'device', 'netns', 'process'], packet: ['reason', 'device', 'netns', 'process'] },
  reasons: null,
  kernelFilter: null,
};

/** Names made on the first need(), counted. */
function lazyNames(): WorkloadSource & { made: number; names: MemoryWorkloadNames } {
  const names = memoryWorkloadNames(SAMPLE);
  const source = {
    made: 0,
    names,
    need: async () => {
      source.made++;
      return names;
    },
    current: () => (source.made > 0 ? names : null),
  };
  return source;
}

const place = (netns: number, ifname: string, count: number, comm?: string): DropPlace => ({
  netns,
  ifindex: 2,
  ifname,
  count,
  ...(comm === undefined ? {} : { pid: 1, comm }),
});
const entry: SummaryEntry = {
  origin: 'software',
  pc: 0xffffffff820a7f2cn,
  reason: 'NO_SOCKET',
  count: 10,
  places: [place(HOST, 'eth0', 1), place(BLUE, 'veth1', 2), place(WEB, 'eth0', 3, 'nginx'), place(CART, 'eth0', 4)],
};

function setup(capabilities = PLACES, extra: { noGrouping?: string; filter?: string } = {}) {
  const backend = memoryBackend(capabilities, capabilities === PLACES ? 'bpf' : 'tracefs');
  const workloads = lazyNames();
  const filter = createFilterControl(backend, { lookup: () => null, missing: () => null }, null, workloads, sources());
  const lines: string[] = [];
  let tick: () => void = () => {};
  const session = new Session({
    backend,
    sources: sources(),
    renderer: buildTextRenderer({ symbols: { lookup: () => null }, colour: false, capabilities }),
    aggregator: new DropAggregator(),
    output: {
      data: (l) => lines.push(l),
      message: (l) => lines.push(`message ${l}`),
      error: (l) => lines.push(`error ${l}`),
    },
    clock: { setInterval: (fn) => (tick = fn), clearInterval: () => {} },
    filter: filter.compiler,
    predicate: filter.predicate,
    workloads,
    ...(extra.noGrouping ? { noGrouping: extra.noGrouping } : {}),
  });
  const run = (line: string) => session.run(parseCommand(line)!);
  return { backend, session, lines, run, workloads, flush: () => tick() };
}

test('set by: the next lines are grouped; show says it; names are made for the keys that need them', async () => {
  const s = setup();
  await s.run('start');
  await s.run('set by dev');
  assert.equal(s.workloads.made, 0, 'dev needs no names');
  s.backend.emit({ kind: 'summary', entries: [entry] });
  s.flush();
  await s.run('set by container, dev');
  assert.equal(s.workloads.made, 1);
  s.backend.emit({ kind: 'summary', entries: [entry] });
  s.flush();
  await s.run('show');
  const data = s.lines.filter((l) => !l.startsWith('message') && !l.startsWith('error'));
  assert.deepEqual(data, [
    '8 drops · dev eth0',
    '2 drops · dev veth1',
    '1 drops · netns host dev eth0',
    `2 drops · netns blue (${BLUE}) dev veth1`,
    '3 drops · container web (1a2b3c4d5e6f) dev eth0',
    '4 drops · container cart (c0ffee012345) dev eth0',
  ]);
  assert.ok(s.lines.includes('message setting summary lines grouped by container, dev'), s.lines.join('\n'));
  assert.ok(s.lines.includes('message Summary lines grouped by: container, dev'));
  await s.run('set by location');
  s.backend.emit({ kind: 'summary', entries: [entry] });
  s.flush();
  assert.equal(
    s.lines.at(-1),
    '10 drops at location 0xffffffff820a7f2c [software] NO_SOCKET',
    'the default line again',
  );
});

test('set by refuses keys the source does not know in summary mode, naming a source that does', async () => {
  const s = setup(SOFTWARE_ONLY);
  await s.run('set by netns,dev');
  assert.deepEqual(s.lines, [
    'error by not set: netns and dev are not known on the tracefs backend in summary mode (use -b bpf)',
  ]);
  await s.run('set by reason');
  assert.equal(s.lines.at(-1), 'message setting summary lines grouped by reason');
  await s.run('set by comm');
  assert.equal(
    s.lines.at(-1),
    'error by not set: comm is not known on the tracefs backend in summary mode (use -b bpf)',
  );
  // Where summaries have places but name no task, comm is `-`, never guessed.
  const places = setup({ ...PLACES, fields: { ...PLACES.fields, summary: ['reason', 'device', 'netns'] } });
  await places.run('set by comm');
  await places.run('start');
  places.backend.emit({ kind: 'summary', entries: [entry] });
  places.flush();
  assert.deepEqual(places.lines.slice(-2), ['7 drops · comm -', '3 drops · comm nginx']);
  const json = setup(PLACES, { noGrouping: 'JSON summaries carry every key in places' });
  await json.run('set by netns');
  assert.deepEqual(json.lines, ['error by not set: JSON summaries carry every key in places']);
  await json.run('set by location');
  assert.deepEqual(json.lines.at(-1), 'message setting summary lines grouped by location');
  assert.throws(() => parseCommand('set by nets'), /^DropwatchError: unknown key 'nets' \(keys: location, reason/);
});

test('a filter on a device, a namespace or a container passes only the matching places', async () => {
  const s = setup();
  await s.run(`set filter dev == eth0 && netns != ${HOST}`);
  assert.equal(s.workloads.made, 0, 'no names needed for a namespace inode');
  await s.run('start');
  s.backend.emit({ kind: 'summary', entries: [entry] });
  s.flush();
  await s.run('set filter container == cart');
  assert.equal(s.workloads.made, 1);
  await s.run('set by netns');
  s.backend.emit({ kind: 'summary', entries: [entry] });
  s.flush();
  const data = s.lines.filter((l) => !l.startsWith('message') && !l.startsWith('error'));
  assert.deepEqual(data, ['7 drops at location 0xffffffff820a7f2c [software] NO_SOCKET', `4 drops · netns ${CART}`]);
});

test('workload filters are refused where the source cannot know them, with the sources that can', async () => {
  const tracefs = memoryBackend(SOFTWARE_ONLY, 'tracefs');
  const refusal = async (text: string) => {
    try {
      await requireKnownFields(tracefs, parse(text), 'summary', sources());
    } catch (e) {
      return e instanceof DropwatchError ? e.message : String(e);
    }
    return 'accepted';
  };
  assert.equal(await refusal('netns == 1'), '--filter: netns is not known on the tracefs backend (use -b bpf)');
  assert.equal(
    await refusal('container == web || pod == a/b'),
    '--filter: container and pod are not known on the tracefs backend (use -b bpf)',
  );
  assert.equal(await refusal('dev == eth0'), 'accepted', 'dev is ifname: warned about, as before');
  const bpf = memoryBackend({ ...PLACES, fields: { ...PLACES.fields, summary: ['reason', 'device', 'netns'] } }, 'bpf');
  await assert.rejects(
    () => requireKnownFields(bpf, parse('comm == nginx'), 'summary', sources()),
    /^DropwatchError: --filter: comm is known only in packet mode, not in summary mode \(add -m packet\)$/,
  );
  const control = createFilterControl(tracefs, { lookup: () => null, missing: () => null }, null, null, sources());
  await assert.rejects(
    () => control.compiler.apply('netns == 1'),
    /filter not set: netns is not known on the tracefs backend \(use -b bpf\)/,
  );
});

test('help lists set by; completion completes the last key of the list', () => {
  assert.ok(helpText().some((l) => l.startsWith('set by <key[,key]>')));
  assert.deepEqual(complete('set b'), [['set by '], 'set b']);
  assert.deepEqual(complete('set by net'), [['set by netns'], 'set by net']);
  assert.deepEqual(complete('set by netns,d'), [['set by netns,dev'], 'set by netns,d']);
  assert.deepEqual(complete('set by netns,c'), [['set by netns,container', 'set by netns,comm'], 'set by netns,c']);
});
