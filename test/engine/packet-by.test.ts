// --by in packet mode: where a source says where drops happen only in its packets (NET_DM's input port), `set by dev`
// is taken in packet mode and the packets are counted into grouped lines each interval; keys the mode cannot know are
// refused in one line, and so is a switch to a mode that cannot know the keys in force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../../src/engine/session.js';
import { DropAggregator } from '../../src/aggregate/index.js';
import { packetEntry } from '../../src/aggregate/group.js';
import { parseCommand } from '../../src/engine/commands.js';
import type { BackendCapabilities, PacketDrop } from '../../src/backend/types.js';
import { buildTextRenderer } from '../../src/output/text.js';
import { sources } from '../../src/sources/index.js';
import { memoryBackend } from '../helpers/backend.js';

/** NET_DM-like: summaries say nothing of where; packets carry the input port. */
const INPUT_PORT: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: true, queue: true, hw: true },
  fields: { summary: ['trap'], packet: ['reason', 'symbol', 'device', 'payload', 'flow'] },
  reasons: null,
  kernelFilter: null,
};

function setup() {
  const backend = memoryBackend(INPUT_PORT, 'netdm');
  const lines: string[] = [];
  let tick: () => void = () => {};
  const session = new Session({
    backend,
    sources: sources(),
    renderer: buildTextRenderer({ symbols: { lookup: () => null }, colour: false, capabilities: INPUT_PORT }),
    aggregator: new DropAggregator(),
    output: {
      data: (l) => lines.push(l),
      message: (l) => lines.push(`message ${l}`),
      error: (l) => lines.push(`error ${l}`),
    },
    clock: { setInterval: (fn) => (tick = fn), clearInterval: () => {} },
  });
  const run = (line: string) => session.run(parseCommand(line)!);
  return { backend, lines, run, flush: () => tick() };
}

const packet = (name: string | undefined, reason = 'NO_SOCKET'): PacketDrop => ({
  origin: 'software',
  pc: 0xffffffff820a7f2cn,
  reason,
  ...(name === undefined ? {} : { inPort: { ifindex: name.length, name } }),
});

test('a packet as a count of one, its input port its place', () => {
  assert.deepEqual(packetEntry({ ...packet('eth0'), trapName: 'x', pid: 5, comm: 'nc', cgroup: 9, netns: 7 }), {
    origin: 'software',
    pc: 0xffffffff820a7f2cn,
    trap: 'x',
    reason: 'NO_SOCKET',
    count: 1,
    places: [{ netns: 7, ifindex: 4, ifname: 'eth0', pid: 5, comm: 'nc', cgroup: 9, count: 1 }],
  });
  assert.deepEqual(packetEntry({ origin: 'hardware' }).places, [
    { netns: null, ifindex: null, ifname: null, count: 1 },
  ]);
});

test('NET_DM-like: set by dev refused in summary mode (naming -m packet), taken in packet mode', async () => {
  const { lines, run } = setup();
  await run('set by dev');
  assert.match(lines.at(-1)!, /^error by not set: dev is not known on the netdm backend in summary mode \(.*packet/);
  await run('set alertmode packet');
  await run('set by dev');
  assert.equal(lines.at(-1), 'message setting summary lines grouped by dev');
  await run('set by netns');
  assert.match(lines.at(-1)!, /^error by not set: netns is not known on the netdm backend in packet mode/);
  // Back to summary mode would leave dev unknown: refused, the grouping named.
  await run('set alertmode summary');
  assert.match(lines.at(-1)!, /^error alert mode not set: .*dev.* summary mode .*set by location/);
});

test('packet mode grouped by dev: the packets counted into lines per input port, none printed one by one', async () => {
  const { backend, lines, run, flush } = setup();
  await run('set alertmode packet');
  await run('set by dev');
  await run('start');
  lines.length = 0;
  for (const name of ['eth0', 'eth0', 'veth1', undefined]) backend.emit({ kind: 'packet', packet: packet(name) });
  flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(lines.sort(), ['1 drops · dev -', '1 drops · dev veth1', '2 drops · dev eth0']);
  await run('set by location');
  lines.length = 0;
  backend.emit({ kind: 'packet', packet: packet('eth0') });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(lines.length, 1, 'by location: packets one by one again');
  assert.match(lines[0]!, /input port name: eth0/);
});
