// Integration tests on the real kernel (root, tracefs, skb:kfree_skb): no mocks. Drops are made by sending UDP to a
// closed port inside a throwaway network namespace; other processes' drops may also appear, so counts are "at least".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openTracefsBackend, TracefsBackend, type TracefsOptions } from '../../src/tracefs/index.js';
import { DropwatchError } from '../../src/errors/index.js';
import type { BackendEvent, PacketDrop } from '../../src/backend/types.js';
import {
  canRunKernelTests,
  ourInstances,
  symbolRange,
  TEST_PREFIX,
  TRACEFS,
  tracefsSnapshot,
} from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const skip = canRunKernelTests();
const INDEX = fileURLToPath(new URL('../../src/tracefs/index.js', import.meta.url));
const opts = (more: TracefsOptions = {}): TracefsOptions => ({ instancePrefix: TEST_PREFIX, ...more });

function collect(b: TracefsBackend): BackendEvent[] {
  const events: BackendEvent[] = [];
  b.onEvent((e) => events.push(e));
  return events;
}

function inRange(pc: bigint, range: [bigint, bigint] | null): boolean {
  return range !== null && pc >= range[0] && pc < range[1];
}

/** Drops summed over summary entries whose pc is inside `range` with the given reason. */
function countAt(events: BackendEvent[], range: [bigint, bigint] | null, reason: string): number {
  let n = 0;
  for (const e of events)
    if (e.kind === 'summary') for (const x of e.entries) if (x.reason === reason && inRange(x.pc, range)) n += x.count;
  return n;
}

function isCode(code: string) {
  return (e: unknown) => e instanceof DropwatchError && e.code === code && !e.message.includes('\n');
}

describe('tracefs backend on the real kernel', { skip }, () => {
  let ns: Netns;
  let udp4: [bigint, bigint] | null;
  let snapshot: Record<string, string>;

  before(() => {
    snapshot = tracefsSnapshot();
    ns = new Netns();
    udp4 = symbolRange('__udp4_lib_rcv');
    assert.ok(udp4, '__udp4_lib_rcv in /proc/kallsyms');
  });

  after(() => {
    ns?.delete();
    for (const n of ourInstances()) fs.rmdirSync(`${TRACEFS}/instances/${n}`); // only if a test failed mid-way
  });

  test('kfree_skb switched off in our instance from outside: said once within a second, switched back on', async () => {
    const warnings: string[] = [];
    const b = await openTracefsBackend(opts({ onWarning: (w) => warnings.push(w) }));
    const events = collect(b);
    try {
      await b.start({ sw: true, hw: false });
      const enable = `${b.instance!.dir}/events/skb/kfree_skb/enable`;
      // Another root process does what an unwary tracing script would.
      fs.writeFileSync(enable, '0');
      await sleep(1500);
      assert.equal(warnings.filter((w) => /switched off in our tracefs instance .* from outside/.test(w)).length, 1);
      assert.equal(fs.readFileSync(enable, 'utf8').trim(), '1', 'switched back on');
      fs.writeFileSync(enable, '0');
      await sleep(1500);
      assert.equal(warnings.length, 1, `said once: ${warnings.join(' | ')}`);
      await ns.sendUdp('127.0.0.1', 50);
      await b.stop();
    } finally {
      await b.close();
    }
    assert.ok(countAt(events, udp4, 'NO_SOCKET') >= 50, 'drops after the switch are counted again');
  });

  test('our kernel filter changed from outside: said once within a second, put back', async () => {
    const warnings: string[] = [];
    const b = await openTracefsBackend(opts({ onWarning: (w) => warnings.push(w) }));
    collect(b);
    try {
      const kf = b.capabilities.kernelFilter;
      assert.equal(kf?.syntax, 'ftrace-event');
      await kf.apply('reason == 3');
      await b.start({ sw: true, hw: false });
      const filter = `${b.instance!.dir}/events/skb/kfree_skb/filter`;
      fs.writeFileSync(filter, 'reason != 3');
      await sleep(1500);
      assert.equal(
        warnings.filter((w) => /kernel filter was changed in our tracefs instance .* from outside/.test(w)).length,
        1,
      );
      assert.equal(fs.readFileSync(filter, 'utf8').trim(), 'reason == 3', 'put back');
      fs.writeFileSync(filter, '0');
      await sleep(1500);
      assert.equal(warnings.length, 1, `said once: ${warnings.join(' | ')}`);
      assert.equal(fs.readFileSync(filter, 'utf8').trim(), 'reason == 3', 'put back again');
      await b.stop();
    } finally {
      await b.close();
    }
  });

  test('summary mode counts every datagram to a closed port as NO_SOCKET in __udp4_lib_rcv, then leaves tracefs as it was', async () => {
    const N = 400;
    const b = await openTracefsBackend(opts());
    const events = collect(b);
    assert.equal(b.instance, null, 'open makes no instance');
    assert.deepEqual(ourInstances(), []);
    assert.ok(b.layout.reasons.size > 0, 'the layout comes from the top-level events/ files');
    let inst = '';
    try {
      await b.start({ sw: true, hw: false });
      inst = b.instance!.dir;
      assert.deepEqual(ourInstances(), [b.instance!.name]);
      assert.equal(fs.readFileSync(`${inst}/set_event`, 'utf8').trim(), 'skb:kfree_skb', 'only kfree_skb is enabled');
      assert.match(fs.readFileSync(`${inst}/trace_clock`, 'utf8'), /\[mono\]/);
      // The kernel rounds up to whole pages (4099 here).
      assert.ok(Number(fs.readFileSync(`${inst}/buffer_size_kb`, 'utf8').trim()) >= 4096, 'buffer size applied');
      await ns.sendUdp('127.0.0.1', N);
      await b.stop();
      assert.equal(fs.existsSync(inst), false, 'instance removed on stop');
      assert.equal(b.instance, null);
    } finally {
      await b.close();
    }
    assert.ok(countAt(events, udp4, 'NO_SOCKET') >= N, `expected >= ${N} NO_SOCKET drops in __udp4_lib_rcv`);
    assert.deepEqual(
      events.filter((e) => e.kind === 'lost'),
      [],
      'nothing lost: every record the kernel handed over became a drop',
    );
    for (const e of events) if (e.kind === 'summary') for (const x of e.entries) assert.equal(x.origin, 'software');
    assert.deepEqual(ourInstances(), []);
    assert.deepEqual(tracefsSnapshot(), snapshot, 'global tracefs state unchanged');
    await b.close(); // idempotent
  });

  test('stop drains what is still in the buffer: drops sent just before stop are all delivered', async () => {
    const N = 300;
    // A reader that would not look again for 5 s and not flush for a minute: only the drain can deliver these.
    const b = await openTracefsBackend(opts({ pollIntervalMs: 5000, flushIntervalMs: 60_000 }));
    const events = collect(b);
    try {
      await b.start({ sw: true, hw: false });
      await new Promise((r) => setTimeout(r, 100)); // the reader has found the buffer empty and is asleep
      await ns.sendUdp('127.0.0.1', N);
      assert.equal(events.length, 0, 'nothing delivered before stop');
      await b.stop();
      assert.ok(countAt(events, udp4, 'NO_SOCKET') >= N, `after stop: ${countAt(events, udp4, 'NO_SOCKET')} of ${N}`);
      const stats = await b.getStats();
      assert.equal(stats.software, undefined);
      assert.equal(
        stats.lost.reduce((s, l) => s + l.count, 0),
        0,
        'a 4 MiB buffer loses none of 300',
      );
    } finally {
      await b.close();
    }
  });

  test("records the reader cannot use are counted lost, from the kernel's read-events counter, not dropped silently", async () => {
    const N = 300;
    // An event id no record carries: every record the kernel hands over fails our shape check, as after a decoder
    // mismatch, while the kernel still counts each one as read.
    const b = await openTracefsBackend(opts({ adjustLayout: (l) => ({ ...l, eventId: (l.eventId + 1) & 0xffff }) }));
    const events = collect(b);
    let stats;
    try {
      await b.start({ sw: true, hw: false });
      await ns.sendUdp('127.0.0.1', N);
      await b.stop();
      stats = await b.getStats();
    } finally {
      await b.close();
    }
    assert.equal(countAt(events, udp4, 'NO_SOCKET'), 0, 'no record became a drop');
    const lost = events.flatMap((e) => (e.kind === 'lost' ? [e] : []));
    for (const e of lost) assert.match(e.where, /^tracefs records not decodable cpu\d+$/);
    const total = lost.reduce((s, e) => s + e.count, 0);
    assert.ok(total >= N, `${total} counted lost, of at least ${N} records`);
    const inStats = stats.lost.filter((l) => l.where.startsWith('tracefs records not decodable'));
    assert.equal(
      inStats.reduce((s, l) => s + l.count, 0),
      total,
      'stats say the same as the Lost events',
    );
  });

  test('packet mode: one event per drop with pc, reason, protocol and a wall-clock timestamp', async () => {
    const N = 25;
    const b = await openTracefsBackend(opts());
    const events = collect(b);
    let t0 = 0n;
    let t1 = 0n;
    try {
      await b.setConfig({ alertMode: 'packet' });
      assert.equal((await b.getConfig()).alertMode, 'packet');
      await b.start({ sw: true, hw: false });
      t0 = BigInt(Date.now()) * 1_000_000n;
      await ns.sendUdp('127.0.0.1', N);
      t1 = BigInt(Date.now() + 1) * 1_000_000n;
      await b.stop();
    } finally {
      await b.close();
    }
    assert.equal(events.filter((e) => e.kind === 'summary').length, 0);
    const ours = events
      .filter((e): e is { kind: 'packet'; packet: PacketDrop } => e.kind === 'packet')
      .map((e) => e.packet)
      .filter((p) => inRange(p.pc!, udp4) && p.reason === 'NO_SOCKET');
    assert.ok(ours.length >= N, `${ours.length} packets`);
    for (const p of ours.slice(0, N)) {
      assert.equal(p.origin, 'software');
      assert.equal(p.protocol, 0x0800);
      assert.equal(p.payload, undefined);
      const ts = p.timestampNs!;
      // Sent between t0 and t1 by the wall clock; 2 ms of slack for the offset calibration and Date.now() ticks.
      assert.ok(ts >= t0 - 2_000_000n && ts <= t1 + 2_000_000n, `timestamp ${ts} outside [${t0}, ${t1}]`);
    }
  });

  test('a small buffer and a slow reader: drops either arrive or are counted lost, per CPU, exactly once', async () => {
    const N = 5000;
    const b = await openTracefsBackend(opts({ bufferSizeKb: 4, pollIntervalMs: 1500, flushIntervalMs: 50 }));
    const events = collect(b);
    try {
      await b.start({ sw: true, hw: false });
      await new Promise((r) => setTimeout(r, 100));
      await ns.sendUdp('127.0.0.1', N);
      // The kernel's own counters, frozen by disabling the event (stop() would remove the instance with them): what
      // we report after the drain must match. A probe already running on the other CPU gets 50 ms to commit.
      const inst = b.instance!;
      inst.setEventEnabled(false);
      await new Promise((r) => setTimeout(r, 50));
      let kernel = 0;
      for (const cpu of inst.cpus()) {
        const text = fs.readFileSync(inst.path(`per_cpu/cpu${cpu}/stats`), 'utf8');
        for (const k of ['overrun', 'commit overrun', 'dropped events'])
          kernel += Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)![1]);
      }
      await b.stop();
      const lostEvents = events.filter((e): e is Extract<BackendEvent, { kind: 'lost' }> => e.kind === 'lost');
      const lostTotal = lostEvents.reduce((s, e) => s + e.count, 0);
      const stats = await b.getStats();
      assert.ok(lostTotal > 0, 'the buffer should have overrun');
      for (const e of lostEvents) assert.match(e.where, /^tracefs ring buffer cpu\d+$/);
      assert.equal(
        stats.lost.reduce((s, l) => s + l.count, 0),
        lostTotal,
        'getStats agrees with the lost events',
      );
      assert.equal(lostTotal, kernel);
      const seen = events.reduce(
        (s, e) => s + (e.kind === 'summary' ? e.entries.reduce((a, x) => a + x.count, 0) : 0),
        0,
      );
      assert.ok(seen + lostTotal >= N, `seen ${seen} + lost ${lostTotal} < sent ${N}`);
      // A second session gets a fresh instance whose kernel counters start at 0: getStats keeps adding up.
      await b.start({ sw: true, hw: false });
      await new Promise((r) => setTimeout(r, 100));
      await ns.sendUdp('127.0.0.1', N);
      await b.stop();
      const lost2 = events
        .filter((e): e is Extract<BackendEvent, { kind: 'lost' }> => e.kind === 'lost')
        .reduce((s, e) => s + e.count, 0);
      assert.ok(lost2 > lostTotal, 'the second session overran too');
      assert.equal(
        (await b.getStats()).lost.reduce((s, l) => s + l.count, 0),
        lost2,
      );
    } finally {
      await b.close();
    }
  });

  test('kernel filter before start: kept, installed by start (which reports a rejection), then filters', async () => {
    const b = await openTracefsBackend(opts());
    const events = collect(b);
    try {
      // No instance yet, so nothing to ask the kernel: the filter waits for start, which rejects it and leaves nothing.
      await b.setFilter('reason = = 3');
      assert.equal(await b.getFilter(), 'reason = = 3');
      assert.deepEqual(ourInstances(), []);
      await assert.rejects(
        b.start({ sw: true, hw: false }),
        (e: unknown) => isCode('E_BAD_INPUT')(e) && /Invalid operator/.test((e as Error).message),
      );
      assert.equal(b.running, false);
      assert.deepEqual(ourInstances(), [], 'a rejected start removes its instance');
      const noSocket = [...b.layout.reasons].find(([, n]) => n === 'NO_SOCKET')![0];
      await b.setFilter(`reason != ${noSocket}`);
      await b.start({ sw: true, hw: false });
      assert.equal(await b.getFilter(), `reason != ${noSocket}`, 'the kernel holds it');
      await ns.sendUdp('127.0.0.1', 100);
      await b.stop();
      assert.equal(countAt(events, udp4, 'NO_SOCKET'), 0, 'the kernel filtered NO_SOCKET out');
      await b.clearFilter();
      assert.equal(await b.getFilter(), 'none');
      await b.start({ sw: true, hw: false });
      assert.equal(await b.getFilter(), 'none');
      await ns.sendUdp('127.0.0.1', 20);
      await b.stop();
      assert.ok(countAt(events, udp4, 'NO_SOCKET') >= 20);
    } finally {
      await b.close();
    }
    assert.equal(
      fs.readFileSync(`${TRACEFS}/events/skb/kfree_skb/filter`, 'utf8'),
      snapshot['events/skb/kfree_skb/filter'],
    );
  });

  test('kernel filter while monitoring: applied at once, a rejection keeps the old one, and the next start keeps it', async () => {
    const b = await openTracefsBackend(opts());
    const events = collect(b);
    const noSocket = [...b.layout.reasons].find(([, n]) => n === 'NO_SOCKET')![0];
    try {
      await b.start({ sw: true, hw: false });
      await b.setFilter(`reason != ${noSocket}`);
      assert.equal(await b.getFilter(), `reason != ${noSocket}`);
      await assert.rejects(
        b.setFilter('nosuchfield == 1'),
        (e: unknown) => isCode('E_BAD_INPUT')(e) && /Field not found/.test((e as Error).message),
      );
      assert.equal(await b.getFilter(), `reason != ${noSocket}`, 'the rejected filter replaced nothing');
      await ns.sendUdp('127.0.0.1', 100);
      await b.stop();
      await b.start({ sw: true, hw: false });
      assert.equal(await b.getFilter(), `reason != ${noSocket}`, 'a new instance gets the filter');
      await ns.sendUdp('127.0.0.1', 100);
      assert.equal(countAt(events, udp4, 'NO_SOCKET'), 0, 'the kernel filtered NO_SOCKET out');
      await b.clearFilter();
      assert.equal(await b.getFilter(), 'none');
      await ns.sendUdp('127.0.0.1', 20);
      await b.stop();
      assert.ok(countAt(events, udp4, 'NO_SOCKET') >= 20);
    } finally {
      await b.close();
    }
    assert.deepEqual(ourInstances(), []);
  });

  test('unsupported requests are one-line E_UNSUPPORTED / E_STATE errors', async () => {
    const b = await openTracefsBackend(opts());
    try {
      const { kernelFilter, ...caps } = b.capabilities;
      assert.deepEqual(caps, {
        modes: ['summary', 'packet'],
        settings: { trunc: false, queue: false, hw: false },
        fields: { summary: ['reason', 'stack'], packet: ['reason', 'protocol', 'time', 'stack', 'process'] },
        reasons: b.layout.reasons,
      });
      assert.equal(kernelFilter?.syntax, 'ftrace-event');
      assert.equal(kernelFilter.reasons, b.layout.reasons);
      assert.equal(b.name, 'tracefs');
      await assert.rejects(b.setConfig({ truncLen: 64 }), isCode('E_UNSUPPORTED'));
      await assert.rejects(b.setConfig({ queueLen: 10 }), isCode('E_UNSUPPORTED'));
      await assert.rejects(b.start({ sw: true, hw: true }), isCode('E_UNSUPPORTED'));
      await b.start({ sw: true, hw: false });
      await assert.rejects(b.start({ sw: true, hw: false }), isCode('E_STATE'));
    } finally {
      await b.close();
    }
    await assert.rejects(b.start({ sw: true, hw: false }), isCode('E_STATE'));
  });

  /** Starts a child that monitors, returns its instance directory, and SIGKILLs it: the instance stays behind. */
  async function killedRun(): Promise<string> {
    const code =
      `const { openTracefsBackend } = await import(${JSON.stringify(INDEX)});` +
      `const b = await openTracefsBackend({ instancePrefix: '${TEST_PREFIX}' });` +
      `await b.start({ sw: true, hw: false }); console.log(b.instance.dir); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const dir = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (c) => reject(new Error(`child exited ${c} before starting`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(fs.existsSync(dir), 'SIGKILL leaves the instance behind');
    return dir;
  }

  test('an instance left by a SIGKILLed run is reclaimed by the next open and by start; one whose pid lives is left alone', async () => {
    const dir = await killedRun();
    const alive = `${TRACEFS}/instances/${TEST_PREFIX}-1`; // pid 1 always exists
    fs.mkdirSync(alive);
    try {
      const b = await openTracefsBackend(opts());
      try {
        assert.equal(fs.existsSync(dir), false, 'stale instance reclaimed by open');
        assert.ok(fs.existsSync(alive), 'a live pid keeps its instance');
        // A run killed after our open (a long idle prompt) is reclaimed when we start.
        const later = await killedRun();
        await b.start({ sw: true, hw: false });
        assert.equal(fs.existsSync(later), false, 'stale instance reclaimed by start');
        assert.ok(fs.existsSync(alive));
      } finally {
        await b.close();
      }
    } finally {
      fs.rmdirSync(alive);
    }
  });

  test('process.exit while monitoring: the exit hook closes the descriptors and removes the instance', async () => {
    const code =
      `const { openTracefsBackend } = await import(${JSON.stringify(INDEX)});` +
      `const b = await openTracefsBackend({ instancePrefix: '${TEST_PREFIX}' });` +
      `await b.start({ sw: true, hw: false }); console.log(b.instance.dir);` +
      `setTimeout(() => process.exit(0), 200);`;
    const dir = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (c) => (c === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${c}`))));
    });
    assert.match(dir, new RegExp(`/instances/${TEST_PREFIX}-\\d+$`));
    assert.equal(fs.existsSync(dir), false, 'instance removed by the exit hook');
  });

  test('a non-root user gets a one-line E_PRIVILEGE', async () => {
    const code =
      `const { openTracefsBackend } = await import(${JSON.stringify(INDEX)});` +
      `try { await openTracefsBackend({ instancePrefix: '${TEST_PREFIX}', mount: false }); console.log('opened'); }` +
      `catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
        uid: 65534,
        gid: 65534,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let s = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (s += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (c) => (c === 0 ? resolve(s) : reject(new Error(`child exited ${c}: ${err}`))));
    });
    const r = JSON.parse(out) as { code: string; message: string };
    assert.equal(r.code, 'E_PRIVILEGE');
    assert.match(r.message, /requires root \(CAP_SYS_ADMIN\)/);
  });
});
