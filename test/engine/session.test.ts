// The session's state machine over an in-memory backend: what it prints for each outcome a backend can report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../../src/engine/session.js';
import type { Renderer, SessionOutput } from '../../src/engine/types.js';
import { DropAggregator } from '../../src/aggregate/index.js';
import { DropwatchError, KernelError } from '../../src/errors/index.js';
import type {
  Backend,
  BackendCapabilities,
  BackendEvent,
  EventListener,
  MonitorConfig,
  Stats,
} from '../../src/backend/types.js';
import { memoryBackend, SOFTWARE_ONLY } from '../helpers/backend.js';

/** A scripted backend: records calls, fails when told to, emits events on demand. */
class ScriptedBackend implements Backend {
  readonly name = 'netdm' as const;
  readonly capabilities: BackendCapabilities = {
    modes: ['summary', 'packet'],
    settings: { trunc: true, queue: true, hw: true },
    fields: { summary: ['trap'], packet: ['reason', 'payload'] },
    reasons: null,
    kernelFilter: null,
  };
  calls: string[] = [];
  failStart: Error | null = null;
  failConfig: Error | null = null;
  private listener: EventListener = () => {};
  onEvent(l: EventListener) {
    this.listener = l;
  }
  emit(e: BackendEvent) {
    this.listener(e);
  }
  async start(o: { sw: boolean; hw: boolean }) {
    this.calls.push(`start sw=${o.sw} hw=${o.hw}`);
    if (this.failStart) throw this.failStart;
  }
  async stop() {
    this.calls.push('stop');
  }
  async setConfig(c: Partial<MonitorConfig>) {
    this.calls.push(`config ${JSON.stringify(c)}`);
    if (this.failConfig) throw this.failConfig;
  }
  async getConfig(): Promise<MonitorConfig> {
    return { alertMode: 'summary', truncLen: 0, queueLen: 1000 };
  }
  async getStats(): Promise<Stats> {
    return { software: { tailDropped: 0n }, lost: [] };
  }
  async close() {
    this.calls.push('close');
  }
}

const renderer: Renderer = {
  summary: (e) => `${e.count} at ${e.pc.toString(16)}`,
  packet: (p) => [`packet ${p.reason}`, ''],
  config: (c) => [`mode ${c.alertMode}`],
  stats: () => ['stats'],
  overflow: (o) => `overflow ${o.drops}`,
  lost: (n, where) => `lost ${n} ${where}`,
  lostTotal: (n, where) => `total lost ${n} ${where}`,
};

/** A session over a scripted backend; `output` replaces parts of the recording output. */
function setup(output: Partial<SessionOutput> = {}) {
  const backend = new ScriptedBackend();
  const out: string[] = [];
  const err: string[] = [];
  /** Both streams in the order written: `data:`, `message:` or `error:` and the line. */
  const log: string[] = [];
  let tick: (() => void) | null = null;
  const session = new Session({
    backend,
    renderer,
    aggregator: new DropAggregator(),
    output: {
      data: (l) => out.push(l) && log.push(`data:${l}`),
      message: (l) => out.push(l) && log.push(`message:${l}`),
      error: (l) => err.push(l) && log.push(`error:${l}`),
      ...output,
    },
    clock: { setInterval: (fn) => (tick = fn), clearInterval: () => (tick = null) },
  });
  return { backend, session, out, err, log, tick: () => tick?.() };
}

test("start failure prints dropwatch's line with the kernel's strerror and extack", async () => {
  const { backend, session, out } = setup();
  backend.failStart = new KernelError(11, 'EAGAIN', 'Monitoring already enabled');
  await session.run({ name: 'start' });
  assert.deepEqual(out, [
    'Enabling monitoring...',
    'Failed activation request, error: Resource temporarily unavailable (Monitoring already enabled)',
  ]);
  assert.equal(session.monitoring, false);
});

test('EBUSY on a config change tells the user to stop first', async () => {
  const { backend, session, out, err } = setup();
  backend.failConfig = new KernelError(16, 'EBUSY');
  await session.run({ name: 'set', key: 'alertmode', value: 'packet' });
  assert.deepEqual(out, ['Setting alert mode', 'Failed config request, error: Device or resource busy']);
  assert.deepEqual(err, ['monitoring must be stopped first (type stop), then set it again']);
});

test('sw/hw flags reach start; the alert limit stops after N entries but prints the rest of that batch', async () => {
  const { backend, session, out, tick } = setup();
  await session.run({ name: 'set', key: 'sw', value: true });
  await session.run({ name: 'set', key: 'alertlimit', value: 2 });
  await session.run({ name: 'start' });
  assert.deepEqual(backend.calls, ['start sw=true hw=false']);
  const entry = (pc: bigint, count: number) => ({ origin: 'software' as const, pc, reason: null, count });
  backend.emit({ kind: 'summary', entries: [entry(1n, 5), entry(2n, 1), entry(1n, 5), entry(3n, 7)] });
  tick();
  await session.whenIdle();
  assert.deepEqual(out.slice(-7), [
    'Issue Ctrl-C to stop monitoring',
    '10 at 1',
    '1 at 2',
    'Alert limit reached, deactivating!',
    '7 at 3',
    'Deactivation requested, turning off monitoring',
    'Got a stop message',
  ]);
  assert.deepEqual(backend.calls, ['start sw=true hw=false', 'stop']);
});

test('drops delivered during stop are still printed, and losses are reported', async () => {
  const { backend, session, out, err } = setup();
  await session.run({ name: 'start' });
  backend.stop = async () => {
    backend.emit({ kind: 'summary', entries: [{ origin: 'software', pc: 0xabcn, reason: 'NO_SOCKET', count: 3 }] });
    backend.emit({ kind: 'lost', count: 4, where: 'netlink socket' });
  };
  await session.run({ name: 'stop' });
  assert.deepEqual(out.slice(-3), ['Deactivation requested, turning off monitoring', '3 at abc', 'Got a stop message']);
  // Each loss once as it comes, then the total in words of its own: a log reader summing `lost` lines counts it once.
  assert.deepEqual(err, ['lost 4 netlink socket', 'total lost 4 netlink socket']);
});

test('start while monitoring is refused with one line; exit stops and closes', async () => {
  const { backend, session, err } = setup();
  await session.run({ name: 'start' });
  await session.run({ name: 'start' });
  assert.deepEqual(err, ['monitoring is already active (type stop to end it)']);
  assert.equal(await session.run({ name: 'exit' }), 'exit');
  assert.deepEqual(backend.calls, ['start sw=false hw=false', 'stop', 'close']);
});

test('unexpected backend errors are not swallowed', async () => {
  const { backend, session } = setup();
  backend.failStart = new TypeError('bug');
  await assert.rejects(session.run({ name: 'start' }), TypeError);
});

test('expected backend errors become one line and the session stays usable', async () => {
  const { backend, session, err, out } = setup();
  backend.failStart = new DropwatchError('E_PRIVILEGE', 'joining events needs CAP_SYS_ADMIN');
  assert.equal(await session.run({ name: 'start' }), 'continue');
  assert.deepEqual(err, ['joining events needs CAP_SYS_ADMIN']);
  await session.run({ name: 'show' });
  assert.deepEqual(out.slice(-4, -2), ['Getting existing configuration', 'mode summary']);
});

test("show: the call chain sampling and grouping settings after dropwatch's lines, on every backend", async () => {
  const { session, out } = setup();
  await session.run({ name: 'show' });
  assert.deepEqual(out, [
    'Getting existing configuration',
    'mode summary',
    'Call chain sampling: not available (the netdm backend reports no call chains)',
    'Summary lines grouped by: location',
  ]);
  const stacks = memoryBackend({ ...SOFTWARE_ONLY, fields: { summary: ['reason', 'stack'], packet: ['reason'] } });
  const lines: string[] = [];
  const withStacks = new Session({
    backend: stacks,
    renderer,
    aggregator: new DropAggregator(),
    output: { data: () => {}, message: (l) => lines.push(l), error: (l) => lines.push(l) },
    clock: { setInterval: () => null, clearInterval: () => {} },
    stack: true,
  });
  const shown = async () => {
    await withStacks.run({ name: 'show' });
    return lines.at(-2);
  };
  assert.equal(await shown(), 'Call chain sampling: on');
  await withStacks.run({ name: 'set', key: 'stack', value: false });
  assert.equal(await shown(), 'Call chain sampling: off');
  await withStacks.run({ name: 'start' });
  assert.equal(await shown(), 'Call chain sampling: off');
  await withStacks.run({ name: 'set', key: 'stack', value: true });
  assert.equal(await shown(), 'Call chain sampling: on from the next start (off now)');
  await withStacks.run({ name: 'stop' });
  assert.equal(await shown(), 'Call chain sampling: on');
});

test('stop while idle still asks the backend, so a run killed while monitoring can be recovered', async () => {
  const { backend, session, out } = setup();
  await session.run({ name: 'stop' });
  assert.deepEqual(backend.calls, ['stop']);
  assert.deepEqual(out, ['Deactivation requested, turning off monitoring', 'Got a stop message']);
  backend.stop = async () => {
    throw new KernelError(1, 'EPERM');
  };
  await session.run({ name: 'stop' });
  assert.equal(out.at(-1), 'Stop request failed, error: Operation not permitted');
});

test('the packet blocks of one delivery go out in one write once it is done, each ending with its blank line', async () => {
  const { backend, session, log } = setup();
  await session.run({ name: 'start' });
  const before = log.length;
  for (const reason of ['A', 'B', 'C']) backend.emit({ kind: 'packet', packet: { origin: 'software', reason } });
  assert.equal(log.length, before, 'nothing is written while the backend is still delivering');
  await Promise.resolve();
  assert.deepEqual(log.slice(before), ['data:packet A\n\npacket B\n\npacket C\n']);
});

test('a line written in the middle of a delivery comes after the packet blocks before it', async () => {
  const { backend, session, log } = setup();
  await session.run({ name: 'start' });
  const before = log.length;
  backend.emit({ kind: 'packet', packet: { origin: 'software', reason: 'A' } });
  backend.emit({ kind: 'lost', count: 2, where: 'netlink socket' });
  backend.emit({ kind: 'packet', packet: { origin: 'software', reason: 'B' } });
  await Promise.resolve();
  assert.deepEqual(log.slice(before), ['data:packet A\n', 'error:lost 2 netlink socket', 'data:packet B\n']);
});

test('packet mode: the alert limit prints its line right after the Nth block and nothing of the batch after it', async () => {
  const { backend, session, log } = setup();
  await session.run({ name: 'set', key: 'alertlimit', value: 2 });
  await session.run({ name: 'start' });
  const before = log.length;
  for (const reason of ['A', 'B', 'C']) backend.emit({ kind: 'packet', packet: { origin: 'software', reason } });
  await session.whenIdle();
  assert.deepEqual(log.slice(before), [
    'data:packet A\n\npacket B\n',
    'message:Alert limit reached, deactivating!',
    'message:Deactivation requested, turning off monitoring',
    'message:Got a stop message',
  ]);
});

test('packets delivered during stop are written before "Got a stop message"', async () => {
  const { backend, session, log } = setup();
  await session.run({ name: 'start' });
  backend.stop = async () => backend.emit({ kind: 'packet', packet: { origin: 'software', reason: 'late' } });
  await session.run({ name: 'stop' });
  assert.deepEqual(log.slice(-3), [
    'message:Deactivation requested, turning off monitoring',
    'data:packet late\n',
    'message:Got a stop message',
  ]);
});

test("the filter's check is said at start, and when the filter changes while monitoring; not while idle", async () => {
  const backend = new ScriptedBackend();
  const err: string[] = [];
  let verdict: string | null = 'dropwatch: this filter can never match: symbol is unknown with -l none';
  const session = new Session({
    backend,
    renderer,
    aggregator: new DropAggregator(),
    output: { data: () => {}, message: () => {}, error: (l) => err.push(l) },
    clock: { setInterval: () => null, clearInterval: () => {} },
    filter: { apply: async (text) => `filter set: ${text}`, check: async () => verdict },
  });
  await session.run({ name: 'set', key: 'filter', value: 'symbol =~ /udp/' });
  assert.deepEqual(err, []);
  await session.run({ name: 'start' });
  assert.deepEqual(err, [verdict]);
  verdict = null;
  await session.run({ name: 'set', key: 'filter', value: 'reason == NO_SOCKET' });
  assert.deepEqual(err.length, 1);
  verdict = 'dropwatch: this filter lets every drop through: x';
  await session.run({ name: 'set', key: 'filter', value: 'x' });
  assert.deepEqual(err, ['dropwatch: this filter can never match: symbol is unknown with -l none', verdict]);
  await session.stop('command');
});

test('a congested output: drops are counted, not printed, reported lost once an interval and in the total', async () => {
  const data: { line: string; drops: number; ends?: readonly number[] }[] = [];
  let congested = false;
  const { backend, session, err, tick } = setup({
    data: (line, reported) => data.push({ line, drops: reported?.drops ?? 0, ends: reported?.ends }),
    congested: () => congested,
  });
  await session.run({ name: 'start' });
  const packet = (reason: string) => ({ kind: 'packet' as const, packet: { origin: 'software' as const, reason } });
  backend.emit(packet('A'));
  backend.emit(packet('B'));
  await Promise.resolve();
  // One write for the batch, and where each drop's text ends in it.
  assert.deepEqual(data, [{ line: 'packet A\n\npacket B\n', drops: 2, ends: [9, 19] }]);
  congested = true;
  for (let i = 0; i < 5; i++) backend.emit(packet('C'));
  backend.emit({ kind: 'summary', entries: [{ origin: 'software', pc: 1n, reason: null, count: 7 }] });
  tick();
  assert.equal(data.length, 1);
  assert.deepEqual(err, ['lost 5 dropwatch output', 'lost 7 dropwatch output']);
  congested = false;
  backend.emit(packet('D'));
  await session.run({ name: 'stop' });
  assert.deepEqual(data.at(-1), { line: 'packet D\n', drops: 1, ends: [9] });
  assert.deepEqual(err.slice(2), ['total lost 12 dropwatch output']);
});

test('help names the flow line and its JSON fields where packet mode adds a flow, and only there', async () => {
  const flowLine = (lines: string[]) => lines.filter((l) => l.startsWith('Packet mode ends each drop with its flow'));
  const plain = setup();
  await plain.session.run({ name: 'help' });
  assert.deepEqual(flowLine(plain.out), []);
  const withFlow = setup();
  (withFlow.backend.capabilities.fields.packet as string[]).push('flow');
  await withFlow.session.run({ name: 'help' });
  assert.deepEqual(flowLine(withFlow.out), [
    'Packet mode ends each drop with its flow, e.g. "flow: IP 10.0.0.1.40001 > 10.0.0.2.9: UDP, length 1"; ' +
      'JSON has it as l3, src, dst, l4, sport, dport.',
  ]);
});

test('a refused mode switch or start never reaches the backend, and says one line', async () => {
  const backend = new ScriptedBackend();
  const err: string[] = [];
  const msg: string[] = [];
  let mode: string | null = 'alert mode not set: the filter in force reads a flow field: x';
  let start: string | null = 'monitoring not started: the filter in force reads a flow field: x';
  const session = new Session({
    backend,
    renderer,
    aggregator: new DropAggregator(),
    output: { data: () => {}, message: (l) => msg.push(l), error: (l) => err.push(l) },
    clock: { setInterval: () => null, clearInterval: () => {} },
    filter: {
      apply: async (text) => `filter set: ${text}`,
      refuseMode: async () => mode,
      refuseStart: async () => start,
    },
  });
  await session.run({ name: 'set', key: 'alertmode', value: 'summary' });
  await session.run({ name: 'start' });
  assert.deepEqual(err, [mode, start]);
  assert.deepEqual(msg, [], 'not even "Setting alert mode" or "Enabling monitoring..."');
  assert.deepEqual(backend.calls, []);
  assert.equal(session.monitoring, false);
  mode = null;
  start = null;
  await session.run({ name: 'set', key: 'alertmode', value: 'summary' });
  await session.run({ name: 'start' });
  assert.equal(session.monitoring, true);
  assert.deepEqual(backend.calls, ['config {"alertMode":"summary"}', 'start sw=false hw=false']);
  await session.stop('command');
});
