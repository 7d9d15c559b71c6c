// BpfBackend over a scripted addon: drained counts become summary events, kernel loss counters become lost events
// once each, stop() delivers what the tables and the ring still hold, and what the source cannot do is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { openBpfBackend } from '../../src/bpf/backend.js';
import type { BpfAddon, NativeBpfProgram } from '../../src/bpf/native.js';
import type { BackendEvent } from '../../src/backend/types.js';
import { DropwatchError } from '../../src/errors/index.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../../test/fixtures/bpf/${name}`, import.meta.url));

/** An addon whose program hands out what the test queues, and records what it was told. */
function scriptedAddon() {
  const script = {
    drains: [] as Buffer[],
    rings: [] as Buffer[],
    chains: [] as Buffer[],
    lost: [0n, 0n, 0n],
    filtered: 0n,
    calls: [] as string[],
    /** The kernel has devlink:devlink_trap_report. */
    hardware: false,
    /** What traps() returns from now on (cumulative counts), and the trapped packets queued. */
    traps: Buffer.alloc(0),
    trapRings: [] as Buffer[],
    trapsLost: [0n, 0n, 0n],
    drainCalls: 0,
    wake: null as (() => void) | null,
  };
  class Program implements NativeBpfProgram {
    attach() {
      script.calls.push('attach');
    }
    detach() {
      script.calls.push('detach');
    }
    configure(mode: number, captureLen: number) {
      script.calls.push(`configure ${mode} ${captureLen}`);
    }
    drain() {
      script.drainCalls++;
      return script.drains.shift() ?? Buffer.alloc(0);
    }
    consume() {
      return script.rings.shift() ?? Buffer.alloc(0);
    }
    watch(onWake: () => void) {
      script.calls.push('watch');
      script.wake = onWake;
    }
    unwatch() {}
    lost() {
      return [...script.lost];
    }
    filter(word: number, values: Uint32Array) {
      script.calls.push(`filter ${word.toString(16)} ${[...values].join(',')}`);
    }
    filtered() {
      return script.filtered;
    }
    stackBudget(stride: number, limit: number) {
      script.calls.push(`stackBudget ${stride} ${limit}`);
    }
    chains() {
      script.calls.push('chains');
      return script.chains.shift() ?? Buffer.alloc(0);
    }
    close() {
      script.calls.push('close');
    }
    hardware() {
      return script.hardware;
    }
    attachTraps() {
      script.calls.push('attachTraps');
    }
    detachTraps() {
      script.calls.push('detachTraps');
    }
    traps() {
      return script.traps;
    }
    consumeTraps() {
      return script.trapRings.shift() ?? Buffer.alloc(0);
    }
    trapsLost() {
      return [...script.trapsLost];
    }
  }
  const addon: BpfAddon = {
    abiVersion: 7,
    packetRecordBytes: 344,
    dropReasons: () => [
      [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
      [3, 'SKB_DROP_REASON_NO_SOCKET'],
    ],
    BpfProgram: Program,
  };
  return { addon, script };
}

/** Waits for the backend's timer to have done what `done` checks (no bound on how long: the runner's timeout is). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

test('counts drained at stop become one summary event; new kernel losses one lost event each', async () => {
  const { addon, script } = scriptedAddon();
  const backend = await openBpfBackend({ addon, drainIntervalMs: 60_000 });
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  assert.deepEqual(
    backend.capabilities.reasons,
    new Map([
      [2, 'NOT_SPECIFIED'],
      [3, 'NO_SOCKET'],
    ]),
  );
  await backend.start({ sw: true, hw: false });
  // start() empties both tables first: whatever they held belongs to no interval.
  script.drains.push(fixture('counts-udp-closed-port.bin'));
  script.lost = [0n, 7n, 0n];
  await backend.stop();
  assert.deepEqual(script.calls, ['stackBudget 0 0', 'configure 0 256', 'attach', 'detach']);
  const summary = events.find((e) => e.kind === 'summary');
  assert.ok(summary?.kind === 'summary');
  const total = summary.entries.reduce((n, e) => n + e.count, 0);
  assert.equal(total, 1000 + 5);
  for (const entry of summary.entries)
    assert.equal(
      entry.places!.reduce((n, p) => n + p.count, 0),
      entry.count,
    );
  assert.deepEqual(
    events.filter((e) => e.kind === 'lost'),
    [{ kind: 'lost', count: 7, where: 'bpf packet ring full' }],
  );
  // Reported once: stats read the same counters without a second event.
  const stats = await backend.getStats();
  assert.deepEqual(
    stats.lost.map((l) => l.count),
    [0, 7, 0],
  );
  assert.equal(events.filter((e) => e.kind === 'lost').length, 1);
  await backend.close();
  assert.equal(script.calls.at(-1), 'close');
});

test('packet mode: records become packets with device, namespace, reason, flow and task; trunc caps the capture', async () => {
  const { addon, script } = scriptedAddon();
  const backend = await openBpfBackend({ addon, pollIntervalMs: 60_000 });
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  await backend.setConfig({ alertMode: 'packet', truncLen: 64 });
  await backend.start({ sw: true, hw: false });
  script.rings.push(fixture('packets-udp-closed-port.bin'));
  await backend.stop();
  assert.ok(script.calls.includes('configure 1 64'));
  const [output, ...packets] = events.flatMap((e) => (e.kind === 'packet' ? [e.packet] : [])).reverse();
  assert.equal(packets.length, 3);
  for (const p of packets) {
    assert.equal(p.reason, 'NO_SOCKET');
    assert.deepEqual(p.inPort, { ifindex: 1, name: 'lo' });
    assert.equal(p.netns, 4026532173, 'the namespace the fixture was captured in');
    assert.equal(p.flow?.dport, 9);
    assert.deepEqual([p.pid, p.comm, p.cgroup], [undefined, undefined, undefined], 'dropped in softirq');
    assert.ok(p.timestampNs! > 0n);
  }
  // Dropped at OUTPUT by the sender: its task and cgroup, no device yet.
  assert.equal(output?.inPort, undefined);
  assert.deepEqual([output?.comm, output?.cgroup, output?.flow?.dport], ['node', 519, 10]);
  await backend.close();
});

test('--stack: samples drained before the counts join them as count-0 entries; the budget set, renewed, then off', async () => {
  const { addon, script } = scriptedAddon();
  let now = 5_000_000_000n;
  const clock = { monotonicNs: () => now, realtimeNs: () => now };
  const backend = await openBpfBackend({ addon, drainIntervalMs: 60_000, stackBudget: 50, clock });
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  assert.ok(backend.capabilities.fields.summary.includes('stack'));
  assert.ok(backend.capabilities.fields.packet.includes('stack'));
  await backend.start({ sw: true, hw: false, stack: true });
  // Chains left from an earlier run are taken out and dropped before anything attaches.
  assert.deepEqual(script.calls, ['chains', 'stackBudget 1 50', 'configure 0 256', 'attach']);
  script.calls.length = 0;
  now += 1_000_000_000n;
  script.chains.push(fixture('chains-udp-closed-port.bin'));
  script.drains.push(fixture('counts-udp-closed-port.bin'));
  await backend.stop();
  // Samples before counts: a sample taken out is never ahead of its drop's count. The budget goes off after detach.
  assert.deepEqual(script.calls, ['detach', 'stackBudget 0 0', 'chains']);
  const summary = events.find((e) => e.kind === 'summary');
  assert.ok(summary?.kind === 'summary');
  const udp = summary.entries.filter((e) => e.pc === 0xffffffff8209ec6cn && e.reason === 'NO_SOCKET');
  assert.equal(
    udp.reduce((n, e) => n + e.count, 0),
    1000,
    'samples add no drops',
  );
  const samples = udp.filter((e) => e.stacks);
  assert.deepEqual(samples.map((e) => e.stacks!.sampled).sort(), [1, 6]);
  assert.ok(samples.every((e) => e.count === 0 && e.stacks!.chains[0]!.frames[0] === 0xffffffff8204bc68n));
  await backend.close();
});

test('--stack renews the budget each second, its stride from the drops counted in the last one', async () => {
  const { addon, script } = scriptedAddon();
  let now = 5_000_000_000n;
  const clock = { monotonicNs: () => now, realtimeNs: () => now };
  const backend = await openBpfBackend({ addon, drainIntervalMs: 5, stackBudget: 100, clock });
  await backend.start({ sw: true, hw: false, stack: true });
  script.calls.length = 0;
  // 1005 drops counted in this second, then the second turns: one drop in 10 is a candidate.
  script.drains.push(fixture('counts-udp-closed-port.bin'));
  await until(() => script.drains.length === 0);
  now += 1_000_000_000n;
  await until(() => script.calls.some((c) => c.startsWith('stackBudget')));
  await backend.stop();
  assert.deepEqual(
    script.calls.filter((c) => c.startsWith('stackBudget')),
    ['stackBudget 10 100', 'stackBudget 0 0'],
  );
  await backend.close();
});

test('-m packet --stack: a sampled packet carries the callers behind its location; the others none', async () => {
  const { addon, script } = scriptedAddon();
  const backend = await openBpfBackend({ addon, pollIntervalMs: 60_000 });
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  await backend.setConfig({ alertMode: 'packet' });
  await backend.start({ sw: true, hw: false, stack: true });
  script.rings.push(
    Buffer.concat([fixture('packets-with-chains-udp-closed-port.bin'), fixture('packets-udp-closed-port.bin')]),
  );
  script.chains.push(fixture('packet-chains-udp-closed-port.bin'));
  await backend.stop();
  const packets = events.flatMap((e) => (e.kind === 'packet' ? [e.packet] : []));
  assert.equal(packets.length, 3 + 4);
  const withStacks = packets.filter((p) => p.stack);
  assert.equal(withStacks.length, 3);
  for (const p of withStacks) assert.deepEqual(p.stack!.slice(0, 2), [0xffffffff8204bc68n, 0xffffffff8204bdd1n]);
  await backend.close();
});

test('without --stack no chain is asked for', async () => {
  const { addon, script } = scriptedAddon();
  const backend = await openBpfBackend({ addon, pollIntervalMs: 60_000 });
  await backend.setConfig({ alertMode: 'packet' });
  await backend.start({ sw: true, hw: false });
  script.rings.push(fixture('packets-udp-closed-port.bin'));
  await backend.stop();
  assert.ok(!script.calls.includes('chains'), script.calls.join(', '));
  await backend.close();
});

test('a flood is read one bounded slice per turn of the event loop, and stop() still delivers all of it', async () => {
  const { addon, script } = scriptedAddon();
  const record = fixture('packets-udp-closed-port.bin');
  // About 4 MiB of records waiting: more than one slice.
  let ring = Buffer.concat(Array.from({ length: 4200 }, () => record));
  const total = ring.length / addon.packetRecordBytes;
  const slices: number[] = [];
  let turned = true;
  const program = addon.BpfProgram;
  addon.BpfProgram = class extends program {
    override consume(maxBytes: number) {
      // As the addon: whole records until maxBytes is reached.
      const take = Math.min(ring.length, Math.ceil(maxBytes / addon.packetRecordBytes) * addon.packetRecordBytes);
      const out = ring.subarray(0, take);
      ring = ring.subarray(take);
      if (out.length > 0) {
        assert.ok(turned, 'the event loop turned between two slices');
        turned = false;
        setImmediate(() => (turned = true));
        slices.push(out.length);
      }
      return out;
    }
  };
  const backend = await openBpfBackend({ addon, pollIntervalMs: 1 });
  let packets = 0;
  backend.onEvent((e) => {
    if (e.kind === 'packet') packets++;
  });
  await backend.setConfig({ alertMode: 'packet' });
  await backend.start({ sw: true, hw: false });
  // Stopped before the reader could have caught up: stop() reads the rest, yielding between slices too.
  await new Promise((resolve) => setTimeout(resolve, 5));
  await backend.stop();
  assert.equal(packets, total);
  assert.ok(slices.length >= 4, `${slices.length} slices`);
  assert.ok(Math.max(...slices) <= 1024 * 1024 + addon.packetRecordBytes, `a slice of ${Math.max(...slices)} bytes`);
  assert.ok(script.calls.includes('detach'));
  await backend.close();
});

test('packet mode reads the ring without flipping the count tables each time (each flip waits a grace period)', async () => {
  const { addon, script } = scriptedAddon();
  const backend = await openBpfBackend({ addon, pollIntervalMs: 1, drainIntervalMs: 1 });
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  await backend.start({ sw: true, hw: false });
  // Counted in summary mode, still in the tables when the mode changes: delivered all the same.
  const switched = script.drainCalls;
  await backend.setConfig({ alertMode: 'packet' });
  script.drains.push(Buffer.alloc(0), fixture('counts-udp-closed-port.bin'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const flips = script.drainCalls - switched;
  await backend.close();
  assert.equal(events.filter((e) => e.kind === 'summary').length, 1, 'the counts left by summary mode');
  // Two after the switch (a program that read the old mode may still count into the new table), one at stop.
  assert.ok(flips <= 2, `${flips} flips in packet mode`);
});

test('packet mode: a wakeup from the kernel reads the ring before the timer comes round', async () => {
  const { addon, script } = scriptedAddon();
  const backend = await openBpfBackend({ addon, pollIntervalMs: 60_000 });
  let packets = 0;
  backend.onEvent((e) => {
    if (e.kind === 'packet') packets++;
  });
  await backend.start({ sw: true, hw: false });
  assert.equal(script.wake, null, 'summary mode reads on its interval only');
  await backend.setConfig({ alertMode: 'packet' });
  const wake = script.wake as (() => void) | null;
  assert.ok(wake, 'packet mode watches the ring');
  script.rings.push(fixture('packets-udp-closed-port.bin'));
  wake();
  assert.equal(packets, 4, "the fixture's four records");
  await backend.close();
});

test('on a kernel without devlink: hardware drops and a packet queue are refused in one line', async () => {
  const { addon } = scriptedAddon();
  const backend = await openBpfBackend({ addon });
  const refused = (e: unknown) =>
    e instanceof DropwatchError && e.code === 'E_UNSUPPORTED' && !e.message.includes('\n');
  assert.equal(backend.capabilities.settings.hw, false);
  await assert.rejects(backend.start({ sw: true, hw: true }), (e: unknown) => refused(e) && /devlink/.test(String(e)));
  await assert.rejects(backend.setConfig({ queueLen: 10 }), refused);
  await assert.rejects(backend.setConfig({ truncLen: -1 }), (e: unknown) => e instanceof DropwatchError);
  await backend.close();
});

test('a kernel whose BTF names no drop reasons is refused before anything loads', async () => {
  const { addon } = scriptedAddon();
  await assert.rejects(
    openBpfBackend({ addon: { ...addon, dropReasons: () => [] } }),
    (e: unknown) => e instanceof DropwatchError && e.code === 'E_BPF_MISSING' && /5\.17.*-b tracefs/.test(e.message),
  );
});

/** A trap count record as native/bpf.cc hands it over (struct dw_trap_key, the count, the port's name). */
function trapCount(trap: string, group: string, count: bigint): Buffer {
  const b = Buffer.alloc(160);
  b.write(trap, 0, 'latin1');
  b.write(group, 64, 'latin1');
  b.writeUInt32LE(3, 128);
  b.writeUInt32LE(4026531840, 132);
  b.writeBigUInt64LE(count, 136);
  b.write('eth0', 144, 'latin1');
  return b;
}

test('hardware drops with devlink: hw alone attaches only the trap program; counts grown since start, trap losses', async () => {
  const { addon, script } = scriptedAddon();
  script.hardware = true;
  const backend = await openBpfBackend({ addon, drainIntervalMs: 60_000 });
  assert.equal(backend.capabilities.settings.hw, true);
  const kf = backend.capabilities.kernelFilter;
  assert.ok(kf?.syntax === 'field-sets' && kf.hardware === true, 'origin is left to dropwatch');
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  // Counted before this start: not reported.
  script.traps = Buffer.concat([trapCount('blackhole_route', 'l3_drops', 5n)]);
  await backend.start({ sw: false, hw: true });
  script.traps = Buffer.concat([trapCount('blackhole_route', 'l3_drops', 15n), trapCount('fid_miss', 'l2_drops', 2n)]);
  script.trapsLost = [1n, 0n, 0n];
  await backend.stop();
  assert.deepEqual(script.calls, ['stackBudget 0 0', 'configure 0 256', 'attachTraps', 'detach', 'detachTraps']);
  const entries = events.flatMap((e) => (e.kind === 'summary' ? e.entries : []));
  assert.deepEqual(
    entries.map((e) => [e.origin, e.trap, e.count, e.reason]),
    [
      ['hardware', 'blackhole_route', 10, null],
      ['hardware', 'fid_miss', 2, null],
    ],
  );
  assert.deepEqual(entries[0]!.places, [{ netns: 4026531840, ifindex: 3, ifname: 'eth0', count: 10 }]);
  assert.deepEqual(
    events.filter((e) => e.kind === 'lost'),
    [{ kind: 'lost', count: 1, where: 'bpf trap count table full' }],
  );
  // Both: software and hardware; neither asked: software only, as NET_DM.
  script.calls.length = 0;
  await backend.start({ sw: true, hw: true });
  await backend.stop();
  await backend.start({ sw: false, hw: false });
  await backend.stop();
  assert.deepEqual(
    script.calls.filter((c) => !c.startsWith('configure') && !c.startsWith('stackBudget')),
    ['attach', 'attachTraps', 'detach', 'detachTraps', 'attach', 'detach'],
  );
  await backend.close();
});

test('hardware drops in packet mode: trapped packets become hardware packet events', async () => {
  const { addon, script } = scriptedAddon();
  script.hardware = true;
  const backend = await openBpfBackend({ addon, pollIntervalMs: 60_000 });
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  await backend.setConfig({ alertMode: 'packet' });
  await backend.start({ sw: false, hw: true });
  const rec = Buffer.alloc(432);
  rec.writeUInt32LE(3, 8);
  rec.writeUInt32LE(142, 16);
  rec.writeUInt16LE(0x0800, 24);
  rec.write('blackhole_route', 32, 'latin1');
  rec.write('l3_drops', 96, 'latin1');
  rec.write('eth0', 160, 'latin1');
  script.trapRings.push(rec);
  await backend.stop();
  const packets = events.flatMap((e) => (e.kind === 'packet' ? [e.packet] : []));
  assert.equal(packets.length, 1);
  assert.equal(packets[0]!.origin, 'hardware');
  assert.equal(packets[0]!.trapName, 'blackhole_route');
  assert.equal(packets[0]!.trapGroup, 'l3_drops');
  assert.deepEqual(packets[0]!.inPort, { ifindex: 3, name: 'eth0' });
  assert.equal(packets[0]!.origLen, 142);
  assert.ok(packets[0]!.timestampNs! > 0n);
  await backend.close();
});
