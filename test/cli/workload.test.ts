// The command line names workloads: --by groups the lines, JSON names every place, a filter on a container keeps only
// its drops; the names resolver is made only for a run that needs it, once, and closed at exit. In-process, over an
// in-memory source whose summaries carry places, with an in-memory WorkloadNames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { Backend, DropSource, PacketDrop, SummaryEntry } from '../../src/backend/types.js';
import { dropwatchMain } from '../../src/cli/dropwatch.js';
import { registerSource } from '../../src/sources/index.js';
import { memoryBackend } from '../helpers/backend.js';
import { BLUE, HOST, memoryWorkloadNames, SAMPLE, WEB } from '../helpers/workload.js';

const ENTRY: SummaryEntry = {
  origin: 'software',
  pc: 0xffffffff820a7f2cn,
  reason: 'NO_SOCKET',
  count: 6,
  places: [
    { netns: HOST, ifindex: 1, ifname: 'lo', count: 1 },
    { netns: BLUE, ifindex: 7, ifname: 'veth1', count: 2 },
    { netns: WEB, ifindex: 2, ifname: 'eth0', count: 3 },
  ],
};

/** Packets as a source that knows their namespace sends them: one on the host, one in WEB's namespace. */
const PACKETS: PacketDrop[] = [HOST, WEB].map((netns) => ({
  origin: 'software',
  pc: 0xffffffff820a7f2cn,
  symbol: '__udp4_lib_rcv+0x4bc/0xd00',
  reason: 'NO_SOCKET',
  netns,
}));

/** A source that drops ENTRY once monitoring starts, or PACKETS in packet mode. */
function placedSource(
  name: string,
  summary: DropSource['offers']['fields']['summary'],
  packet: DropSource['offers']['fields']['packet'] = ['reason'],
): DropSource {
  const offers: DropSource['offers'] = {
    modes: ['summary', 'packet'],
    settings: { trunc: false, queue: false, hw: false },
    fields: { summary, packet },
  };
  return {
    name,
    label: name,
    reads: 'an in-memory script',
    needs: 'nothing',
    missing: 'E_MEMORY_MISSING',
    offers,
    open: () => {
      const backend = memoryBackend({ ...offers, reasons: null, kernelFilter: null }, name);
      const start = backend.start.bind(backend);
      const opened: Backend = {
        ...backend,
        start: async (o) => {
          await start(o);
          const packets = (await backend.getConfig()).alertMode === 'packet';
          setTimeout(() => {
            if (!packets) backend.emit({ kind: 'summary', entries: [ENTRY] });
            else for (const packet of PACKETS) backend.emit({ kind: 'packet', packet });
          }, 5);
        },
      };
      return Promise.resolve(opened);
    },
  };
}
registerSource(placedSource('placed', ['reason', 'device', 'netns'], ['reason', 'netns']));
registerSource(placedSource('plain', ['reason']));

/** Runs dropwatch in-process; `names` counts how often the resolver was made and closed. */
async function dropwatch(args: string[]) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  stdin.end();
  const names = memoryWorkloadNames(SAMPLE);
  let made = 0;
  const code = await dropwatchMain(['-l', 'none', ...args], {
    stdin,
    stdout,
    stderr,
    env: {},
    signals: new EventEmitter(),
    workloadNames: async () => {
      made++;
      return names;
    },
    hostNetns: () => HOST,
  });
  return { code, out, err, made, closed: names.closed };
}

test('a plain run makes no names resolver', async () => {
  const r = await dropwatch(['-b', 'placed', '-s', '-d', '0.2']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, '6 drops at location 0xffffffff820a7f2c [software] NO_SOCKET\n');
  assert.equal(r.made, 0);
});

test('-m packet: the block in a container’s namespace ends in its workload line, the host’s is dropwatch’s', async () => {
  const r = await dropwatch(['-b', 'placed', '-s', '-d', '0.2', '-m', 'packet']);
  assert.equal(r.code, 0, r.err);
  const block = (...more: string[]) => [
    'drop at: __udp4_lib_rcv+0x4bc/0xd00 (0xffffffff820a7f2c)',
    'origin: software',
    'drop reason: NO_SOCKET',
    ...more,
    '',
  ];
  const lines = [...block(), ...block('workload: container web (1a2b3c4d5e6f) netns 4026532300')];
  assert.equal(r.out, lines.map((l) => `${l}\n`).join(''));
  assert.deepEqual([r.made, r.closed], [1, true]);
});

test('--by netns,dev: lines by namespace and device, named; the resolver made once and closed', async () => {
  const r = await dropwatch(['-b', 'placed', '-s', '-d', '0.2', '--by', 'netns,dev']);
  assert.equal(r.code, 0, r.err);
  assert.equal(
    r.out,
    [
      '1 drops · netns host dev lo',
      `2 drops · netns blue (${BLUE}) dev veth1`,
      `3 drops · netns ${WEB} dev eth0`,
      '',
    ].join('\n'),
  );
  assert.deepEqual([r.made, r.closed], [1, true]);
});

test('--by dev needs no names', async () => {
  const r = await dropwatch(['-b', 'placed', '-s', '-d', '0.2', '--by', 'location,dev']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^2 drops at location 0xffffffff820a7f2c \[software\] NO_SOCKET · dev veth1$/m);
  assert.equal(r.made, 0);
});

test('JSON names every place; a filter on a container keeps only its drops', async () => {
  const r = await dropwatch(['-b', 'placed', '-s', '-d', '0.2', '-f', 'json', '--filter', 'container == web']);
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out.trim()) as { count: number; places: { netns: number; containerName: string }[] };
  assert.equal(summary.count, 3);
  assert.deepEqual(
    summary.places.map((p) => [p.netns, p.containerName]),
    [[WEB, 'web']],
  );
  assert.deepEqual([r.made, r.closed], [1, true]);
});

test('a key or a filter field the source does not know: one line, exit 1, naming the sources that know it', async () => {
  const by = await dropwatch(['-b', 'plain', '-s', '-d', '0.2', '--by', 'container']);
  assert.equal(by.code, 1);
  assert.equal(by.out, '');
  assert.match(
    by.err,
    /^dropwatch: --by: container is not known on the plain backend in summary mode \(use -b bpf or -b placed\)\n$/,
  );
  const filter = await dropwatch(['-b', 'plain', '-s', '-d', '0.2', '--filter', 'netns == 1']);
  assert.equal(filter.code, 1);
  assert.match(
    filter.err,
    /^dropwatch: --filter: netns is not known on the plain backend \(use -b bpf or -b placed\)\n$/,
  );
  assert.equal(by.made + filter.made, 0);
});
