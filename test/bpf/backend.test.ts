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
    lost: [0n, 0n, 0n],
    filtered: 0n,
    calls: [] as string[],
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
    close() {
      script.calls.push('close');
    }
  }
  const addon: BpfAddon = {
    abiVersion: 3,
    packetRecordBytes: 336,
    dropReasons: () => [
      [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
      [3, 'SKB_DROP_REASON_NO_SOCKET'],
    ],
    BpfProgram: Program,
  };
  return { addon, script };
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
  assert.deepEqual(script.calls, ['configure 0 256', 'attach', 'detach']);
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
  const packets = events.flatMap((e) => (e.kind === 'packet' ? [e.packet] : []));
  assert.equal(packets.length, 3);
  for (const p of packets) {
    assert.equal(p.reason, 'NO_SOCKET');
    assert.deepEqual(p.inPort, { ifindex: 1, name: 'lo' });
    assert.equal(p.netns, 4026532304, 'the namespace the fixture was captured in');
    assert.equal(p.flow?.dport, 9);
    assert.equal(p.comm, 'node');
    assert.ok(p.timestampNs! > 0n);
  }
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
  assert.equal(packets, 3);
  await backend.close();
});

test('hardware drops, call chains and a packet queue are refused in one line', async () => {
  const { addon } = scriptedAddon();
  const backend = await openBpfBackend({ addon });
  const refused = (e: unknown) =>
    e instanceof DropwatchError && e.code === 'E_UNSUPPORTED' && !e.message.includes('\n');
  await assert.rejects(backend.start({ sw: true, hw: true }), refused);
  await assert.rejects(backend.start({ sw: true, hw: false, stack: true }), refused);
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
