// A source is one folder and one row: a third, in-memory source registered here is offered by -b, `help` and `show`,
// and every message about what a source lacks names it where it has the capability.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { DropSource, SourceInfo } from '../../src/backend/types.js';
import { dropwatchMain } from '../../src/cli/dropwatch.js';
import { parseCommandLine, usage } from '../../src/cli/argv.js';
import { DropwatchError } from '../../src/errors/index.js';
import {
  autoNotice,
  openBackend,
  passedOver,
  registerSource,
  sourceChoices,
  sources,
} from '../../src/sources/index.js';
import { memoryBackend, SOFTWARE_ONLY } from '../helpers/backend.js';

/** Everything NET_DM's packet queue offers, and call chains, without a kernel. */
const MEMORY: DropSource = {
  name: 'memory',
  label: 'Memory',
  reads: 'an in-memory script',
  needs: 'nothing',
  missing: 'E_MEMORY_MISSING',
  offers: {
    modes: ['summary', 'packet'],
    settings: { trunc: true, queue: true, hw: true },
    fields: { summary: ['reason', 'stack'], packet: ['reason', 'payload', 'flow'] },
  },
  open: () => Promise.resolve(memoryBackend({ ...MEMORY.offers, reasons: null, kernelFilter: null }, 'memory')),
};
registerSource(MEMORY);

/** Runs dropwatch in-process with `commands` piped to its prompt; returns what it printed. */
async function dropwatch(args: string[], commands: string): Promise<{ code: number; out: string; err: string }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  stdin.end(commands);
  const code = await dropwatchMain(args, { stdin, stdout, stderr, env: {}, signals: new EventEmitter() });
  return { code, out, err };
}

test('-b takes the registered source, and the usage line and the errors list it', () => {
  assert.deepEqual(sourceChoices(), ['auto', 'netdm', 'bpf', 'tracefs', 'memory']);
  assert.match(usage(), /\[-b\|--backend auto\|netdm\|bpf\|tracefs\|memory\]$/);
  const line = parseCommandLine(['-b', 'memory'], () => {});
  assert.ok(line !== 'help' && line.backend === 'memory');
  assert.throws(
    () => parseCommandLine(['-b', 'pcap'], () => {}),
    (e: unknown) =>
      e instanceof DropwatchError && e.message === 'Unknown backend pcap (use auto, netdm, bpf, tracefs or memory)',
  );
  let help = '';
  parseCommandLine(['--help'], (t) => (help += t));
  assert.match(
    help.replace(/\s+/g, ' '),
    /auto \(NET_DM, else bpf, else tracefs, else Memory\), netdm, bpf, tracefs or memory/,
  );
  assert.throws(() => registerSource(MEMORY), /already listed/);
});

test("auto's order: NET_DM, then bpf, then tracefs; its notice names in one line what it passed over and why", () => {
  assert.deepEqual(
    sources()
      .slice(0, 3)
      .map((s) => s.name),
    ['netdm', 'bpf', 'tracefs'],
  );
  const [netdm, bpf, tracefs] = sources() as [SourceInfo, SourceInfo, SourceInfo];
  assert.equal(
    autoNotice(bpf, [{ source: netdm, why: `this kernel has no ${netdm.needs}` }]),
    'dropwatch: using bpf (NET_DM: this kernel has no drop_monitor (NET_DM))',
  );
  assert.equal(
    autoNotice(tracefs, [
      { source: netdm, why: 'no call chains' },
      { source: bpf, why: `this kernel has no ${bpf.needs}` },
    ]),
    'dropwatch: using tracefs (NET_DM: no call chains; bpf: this kernel has no BPF with BTF for skb:kfree_skb)',
  );
});

test('--stack: auto passes over NET_DM for the first source with call chains, bpf, and says so in one line', async () => {
  const opened: string[] = [];
  const notices: string[] = [];
  // Each row opens an in-memory backend named after it, so the choice is seen without a kernel.
  const table = sources() as DropSource[];
  const saved = table.map((s) => Object.getOwnPropertyDescriptor(s, 'open')!);
  try {
    for (const source of table)
      Object.defineProperty(source, 'open', {
        value: () => {
          opened.push(source.name);
          return Promise.resolve(memoryBackend(SOFTWARE_ONLY, source.name));
        },
      });
    const backend = await openBackend('auto', { notice: (l) => notices.push(l), stack: true });
    assert.equal(backend.name, 'bpf');
    assert.deepEqual(opened, ['bpf'], 'NET_DM is not even opened: it has no chains');
    assert.deepEqual(notices, ['dropwatch: using bpf (NET_DM: no call chains)']);
  } finally {
    table.forEach((s, i) => Object.defineProperty(s, 'open', saved[i]!));
  }
});

test("auto's notice says why a source gave way when its error says, else that the kernel lacks what it needs", () => {
  const [netdm, bpf] = sources() as [SourceInfo, SourceInfo];
  const why = 'the memory limit of its memory cgroup leaves no room for its maps';
  assert.equal(passedOver(bpf, new DropwatchError('E_BPF_MISSING', 'long sentence', { why })), why);
  assert.equal(passedOver(netdm, new DropwatchError('E_NETDM_MISSING', 'x')), `this kernel has no ${netdm.needs}`);
});

test('openBackend opens it by name', async () => {
  const backend = await openBackend('memory', { notice: () => {} });
  assert.equal(backend.name, 'memory');
});

test('help and show at its prompt name it; its settings are honoured, not refused', async () => {
  const r = await dropwatch(['-b', 'memory', '-l', 'none'], 'help\nshow\nset hw true\nset trunc 64\nexit\n');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^Backend: memory\. /m);
  assert.match(r.out, /^setting hardware drops monitoring to 1$/m);
  assert.match(r.out, /^Truncation length successfully set$/m);
  assert.match(r.out, /^Truncation length: /m, 'show lists its queue settings: it has them');
  assert.doesNotMatch(r.out + r.err, /set hw needs|captures no payload/);
});

test('on a source without them, the refusals name every source that has the capability, the new one included', async () => {
  const info = sources();
  assert.equal(info.at(-1)?.name, 'memory');
  const { Session } = await import('../../src/engine/session.js');
  const lines: string[] = [];
  const backend = memoryBackend(SOFTWARE_ONLY, 'plain');
  const session = new Session({
    backend,
    sources: info,
    renderer: (await import('../../src/output/text.js')).buildTextRenderer({
      symbols: { lookup: () => null },
      colour: false,
      capabilities: backend.capabilities,
      sources: info,
    }),
    aggregator: { add: () => {}, flush: () => ({ lines: [], overflow: null }) },
    output: { data: () => {}, message: (l) => lines.push(l), error: (l) => lines.push(`error ${l}`) },
    clock: { setInterval: () => null, clearInterval: () => {} },
  });
  for (const name of ['help', 'show'] as const) await session.run({ name });
  await session.run({ name: 'set', key: 'hw', value: true });
  await session.run({ name: 'set', key: 'stack', value: true });
  assert.ok(
    lines.includes('This backend sees software drops only: set hw needs NET_DM, bpf or Memory.'),
    lines.join('\n'),
  );
  assert.ok(
    lines.includes(
      'Truncation length and queue length: not applicable (no NET_DM or Memory packet queue on this backend)',
    ),
  );
  assert.ok(
    lines.includes(
      'error hardware drops are reported only by NET_DM, bpf or Memory (devlink traps); the plain backend sees software drops only',
    ),
  );
  assert.ok(
    lines.includes(
      'error the plain backend reports no call chains; the bpf backend does (-b bpf); the tracefs backend does (-b tracefs); the memory backend does (-b memory)',
    ),
  );
});

test('a source with hardware drops on a kernel without devlink: one line says the kernel lacks it', async () => {
  const info = sources();
  const { Session } = await import('../../src/engine/session.js');
  const lines: string[] = [];
  // Opened without hardware drops, though its row offers them (bpf's, on a kernel without devlink).
  const backend = memoryBackend(SOFTWARE_ONLY, 'bpf');
  assert.equal(info.find((s) => s.name === 'bpf')?.offers.settings.hw, true);
  const session = new Session({
    backend,
    sources: info,
    renderer: (await import('../../src/output/text.js')).buildTextRenderer({
      symbols: { lookup: () => null },
      colour: false,
      capabilities: backend.capabilities,
      sources: info,
    }),
    aggregator: { add: () => {}, flush: () => ({ lines: [], overflow: null }) },
    output: { data: () => {}, message: (l) => lines.push(l), error: (l) => lines.push(`error ${l}`) },
    clock: { setInterval: () => null, clearInterval: () => {} },
  });
  await session.run({ name: 'help' });
  await session.run({ name: 'set', key: 'hw', value: true });
  assert.ok(
    lines.includes('This kernel has no devlink (devlink:devlink_trap_report): this backend sees software drops only.'),
    lines.join('\n'),
  );
  assert.ok(
    lines.includes(
      'error this kernel has no devlink (no devlink:devlink_trap_report tracepoint), so the bpf backend sees no hardware drops',
    ),
    lines.join('\n'),
  );
});

test('--metrics-labels on a source that does not say where drops happen: one line naming the sources that do', async () => {
  for (const [mode, said] of [
    [[], 'summary'],
    [['-m', 'packet'], 'packet'],
  ] as const) {
    const args = [
      '-b',
      'memory',
      '-l',
      'none',
      '-s',
      ...mode,
      '--metrics',
      '127.0.0.1:0',
      '--metrics-labels',
      'netns,dev',
    ];
    const r = await dropwatch(args, '');
    assert.equal(r.code, 1, r.err);
    assert.equal(
      r.err,
      `dropwatch: --metrics-labels: the memory backend does not say where drops happen (network namespace, device) in ${said} mode; ` +
        'the netdm backend does in packet mode (-b netdm -m packet); the bpf backend does (-b bpf)\n',
    );
    assert.doesNotMatch(r.out, /Serving|activated/);
  }
});
