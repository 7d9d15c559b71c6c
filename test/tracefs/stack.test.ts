// kernel_stack records (the `stacktrace` trigger's call chains) decoded from pages captured on the real kernel
// (test/fixtures/tracefs/stack, made by capture.mjs), checked against the kernel's own text rendering (trace.txt).
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  callersOf,
  kernelStackLayout,
  kfreeSkbLayout,
  parseEventFormat,
  parseHeaderEvent,
  parseHeaderPage,
  readKernelStack,
} from '../../src/tracefs/format.js';
import { decodePage } from '../../src/tracefs/page.js';
import { symbolTableFromText } from '../../src/symbols/index.js';
import { createReaderCore } from '../../src/tracefs/reader-core.js';
import { MODE_PACKET, MODE_SUMMARY } from '../../src/tracefs/reader-protocol.js';
import { parseSavedCmdlines } from '../../src/tracefs/process.js';
import { captureCpus, capturePages, captureStats, loadCapture } from './fixtures.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/tracefs/stack/', import.meta.url));
const read = (name: string) => readFileSync(join(DIR, name), 'utf8');

const layouts = { page: parseHeaderPage(read('header_page')), event: parseHeaderEvent(read('header_event')) };
const skb = kfreeSkbLayout(parseEventFormat(read('format')));
const stack = kernelStackLayout(parseEventFormat(read('kernel_stack.format')));
const symbols = symbolTableFromText(read('kallsyms.txt'));

type Rec = { kind: 'drop'; pid: number; location: bigint } | { kind: 'stack'; pid: number; frames: bigint[] | null };

function records(): Rec[] {
  const raw = readFileSync(join(DIR, 'cpu0.raw'));
  const pageSize = layouts.page.dataOffset + layouts.page.dataSize;
  const out: Rec[] = [];
  for (let off = 0; off < raw.length; off += pageSize) {
    const page = raw.subarray(off, off + pageSize);
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    decodePage(page, layouts, (at, length) => {
      const type = view.getUint16(at, true);
      const pid = view.getInt32(at + 4, true);
      if (type === skb.eventId)
        out.push({ kind: 'drop', pid, location: view.getBigUint64(at + skb.location.offset, true) });
      else if (type === stack.eventId)
        out.push({ kind: 'stack', pid, frames: readKernelStack(view, at, length, stack) });
    });
  }
  return out;
}

/** The ` => sym` blocks under each `<stack trace>` line of the kernel's text trace. */
function textStacks(): string[][] {
  const blocks: string[][] = [];
  for (const line of read('trace.txt').split('\n')) {
    if (line.includes('<stack trace>')) blocks.push([]);
    else if (line.startsWith(' => ')) blocks.at(-1)?.push(line.slice(4).trim());
  }
  return blocks;
}

test('kernel_stack layout: id from the format, size counts entries of 8 bytes', () => {
  assert.equal(stack.eventId, parseEventFormat(read('kernel_stack.format')).id);
  assert.equal(stack.callerSize, 8);
  assert.equal(stack.callerOffset, 16);
});

test('stacktrace:4 gave four chains, each right after its drop and from the same task', () => {
  const recs = records();
  const stacks = recs.filter((r) => r.kind === 'stack');
  assert.equal(stacks.length, 4);
  assert.equal(recs.filter((r) => r.kind === 'drop').length, 6);
  recs.forEach((r, i) => {
    if (r.kind !== 'stack') return;
    const before = recs[i - 1];
    assert.equal(before?.kind, 'drop', `record ${i - 1} precedes a stack`);
    assert.equal(before.pid, r.pid);
  });
});

test('decoded chains name the same frames as the kernel text, and the drop location is among them', () => {
  const recs = records();
  const text = textStacks();
  const decoded = recs.flatMap((r, i) => (r.kind === 'stack' ? [{ frames: r.frames, drop: recs[i - 1] }] : []));
  assert.equal(decoded.length, text.length);
  decoded.forEach(({ frames, drop }, i) => {
    assert.ok(frames, `stack ${i} decodes`);
    assert.deepEqual(
      frames.map((pc) => symbols.resolve(pc)?.symbol ?? `?${pc.toString(16)}`),
      text[i]!.map((f) => f.replace(/\+0x.*$/, '')),
    );
    assert.ok(drop?.kind === 'drop' && frames.includes(drop.location), 'the location is a frame of its own chain');
  });
});

test('callersOf: the chain behind the location starts at its caller (ip_protocol_deliver_rcu for UDP)', () => {
  const recs = records();
  const first = recs.findIndex((r) => r.kind === 'stack');
  const drop = recs[first - 1];
  const rec = recs[first];
  assert.ok(drop?.kind === 'drop' && rec?.kind === 'stack' && rec.frames);
  const callers = callersOf(rec.frames, drop.location);
  assert.equal(symbols.resolve(drop.location)?.symbol, '__udp4_lib_rcv');
  assert.equal(symbols.resolve(callers[0]!)?.symbol, 'ip_protocol_deliver_rcu');
  assert.equal(callers.length, rec.frames.length - rec.frames.indexOf(drop.location) - 1);
  assert.deepEqual(callersOf(rec.frames, 1n), rec.frames, 'a location not among the frames keeps them all');
});

test('a record too short for the size it claims is not a chain', () => {
  const bytes = new Uint8Array(32);
  const view = new DataView(bytes.buffer);
  view.setInt32(stack.size.offset, 3, true);
  assert.equal(readKernelStack(view, 0, 32, stack), null);
  view.setInt32(stack.size.offset, 2, true);
  assert.equal(readKernelStack(view, 0, 32, stack)?.length, 2);
  view.setInt32(stack.size.offset, -1, true);
  assert.equal(readKernelStack(view, 0, 32, stack), null);
});

// The capture holds drops and kernel_stack records in one buffer, as the chain instance's pages do; fed to the core as
// our own instance's pages too, it stands for both (each drop once in each, as the kernel writes them).
describe('the reader core with stacks on (stack capture: 6 drops, the first 4 with a chain)', () => {
  const capture = loadCapture('stack');
  const make = (mode: number) =>
    createReaderCore({
      cpus: captureCpus(capture),
      layouts: capture.layouts,
      skb: capture.skb,
      pageSize: capture.pageSize,
      maxPending: 1024,
      mode,
      stack,
    });
  const feedAll = (core: ReturnType<typeof make>) =>
    captureCpus(capture).forEach((cpu, i) =>
      capturePages(capture, cpu).forEach((p) => {
        core.feed(i, p);
        core.feedChains(i, p);
      }),
    );
  const text = textStacks().map((frames) => frames.map((f) => f.replace(/\+0x.*$/, '')));
  const named = (callers: ArrayLike<bigint>) => Array.from(callers, (pc) => symbols.resolve(pc)?.symbol ?? '?');

  it('summary: counts stay exact and each chain is counted once, keyed by location, reason and callers', () => {
    const core = make(MODE_SUMMARY);
    feedAll(core);
    const rows = core.takeSummary() ?? [];
    assert.equal(
      rows.reduce((n, r) => n + r[3], 0),
      6,
    );
    const chains = core.takeChains() ?? [];
    assert.equal(
      chains.reduce((n, c) => n + c[3], 0),
      4,
      'one sample per kernel_stack record',
    );
    // The kernel's text shows each chain from the tracing machinery down; ours starts at the location's caller.
    const expected = new Set(text.map((t) => t.slice(t.indexOf('__udp4_lib_rcv') + 1).join(' ')));
    const v6 = new Set(text.map((t) => t.slice(t.indexOf('__udp6_lib_rcv') + 1).join(' ')));
    for (const [, , reason, , callers] of chains) {
      assert.equal(capture.skb.reasons.get(reason), 'NO_SOCKET');
      const got = named(callers).join(' ');
      assert.ok(expected.has(got) || v6.has(got), got);
    }
  });

  it('stack records are consumed records, not undecodable ones', () => {
    const core = make(MODE_SUMMARY);
    feedAll(core);
    const stats = captureCpus(capture).map((cpu) => {
      const s = captureStats(capture, cpu);
      // As after our reads: the kernel counts every record it handed over, drops and stacks alike.
      return { ...s, readEvents: s.entries };
    });
    assert.deepEqual(
      core.takeLost(stats).filter((l) => l.undecoded > 0),
      [],
    );
  });

  it('packet mode: the sampled packets carry their callers and every packet its pid', () => {
    const core = make(MODE_PACKET);
    feedAll(core);
    const batch = core.takePackets();
    assert.ok(batch);
    assert.equal(batch.count, 6);
    assert.deepEqual(
      (batch.stacks ?? []).map(([i]) => i),
      [0, 1, 2, 3],
    );
    for (const [i, callers] of batch.stacks ?? []) {
      assert.equal(named(callers)[0], i < 3 ? 'ip_protocol_deliver_rcu' : 'ip6_protocol_deliver_rcu');
    }
    const pids = new Set(Array.from(batch.pid));
    assert.equal(pids.size, 2, 'two senders, one per burst');
    assert.ok([...pids].every((p) => p > 0));
  });

  it('without the stack layout, kernel_stack records are not drops and chains are refused', () => {
    const core = createReaderCore({
      cpus: captureCpus(capture),
      layouts: capture.layouts,
      skb: capture.skb,
      pageSize: capture.pageSize,
      maxPending: 1024,
      mode: MODE_SUMMARY,
    });
    captureCpus(capture).forEach((cpu, i) => capturePages(capture, cpu).forEach((p) => core.feed(i, p)));
    assert.equal(
      (core.takeSummary() ?? []).reduce((n, r) => n + r[3], 0),
      6,
    );
    assert.equal(core.takeChains(), null);
    assert.throws(() => core.feedChains(0, capturePages(capture, captureCpus(capture)[0]!)[0]!), /chains are off/);
  });

  it("the chain instance's pages count nothing: no drops, no losses, only chains", () => {
    const core = make(MODE_SUMMARY);
    captureCpus(capture).forEach((cpu, i) => capturePages(capture, cpu).forEach((p) => core.feedChains(i, p)));
    assert.equal(core.drops, 0);
    assert.equal(core.takeSummary(), null);
    assert.equal(
      (core.takeChains() ?? []).reduce((n, c) => n + c[3], 0),
      4,
    );
    const stats = captureCpus(capture).map((cpu) => ({ ...captureStats(capture, cpu), readEvents: 0 }));
    assert.deepEqual(core.takeLost(stats), []);
  });

  it('a chain never stands for more drops than were counted with it: flush trims it to the count', () => {
    const core = make(MODE_SUMMARY);
    // Chains read, their drops not yet: nothing to stand for.
    captureCpus(capture).forEach((cpu, i) => capturePages(capture, cpu).forEach((p) => core.feedChains(i, p)));
    const stats = captureCpus(capture).map((cpu) => captureStats(capture, cpu));
    assert.deepEqual(
      core.flush(stats).filter((m) => m.type === 'summary'),
      [],
    );
  });

  it('the budget caps the chains kept in each second of drop time (three fall in one second, one in the next)', () => {
    const core = createReaderCore({
      cpus: captureCpus(capture),
      layouts: capture.layouts,
      skb: capture.skb,
      pageSize: capture.pageSize,
      maxPending: 1024,
      mode: MODE_SUMMARY,
      stack,
      chainBudget: 2,
    });
    feedAll(core);
    assert.equal(
      (core.takeChains() ?? []).reduce((n, c) => n + c[3], 0),
      2 + 1,
    );
  });
});

test('saved_cmdlines: pid and name per line, names with spaces kept', () => {
  const names = parseSavedCmdlines('3191 node\n42 kworker/0:1 two\n\nbad line\n');
  assert.deepEqual(
    [...names],
    [
      [3191, 'node'],
      [42, 'kworker/0:1 two'],
    ],
  );
});
