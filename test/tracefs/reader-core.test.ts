// The tracefs reader core on ring-buffer pages captured from a real kernel (test/fixtures/tracefs): summaries and
// packets checked against the kernel's text rendering of the same buffer (trace.txt, kallsyms.txt), loss against its
// per-CPU stats. No root: nothing here touches tracefs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { DropwatchError } from '../../src/errors/index.js';
import type { CpuStats } from '../../src/tracefs/format.js';
import {
  createReaderCore,
  PAGE_BAD,
  PAGE_CAUGHT_UP,
  PAGE_FULL,
  REPORTED_DECODE_ERRORS,
  type LostReport,
  type PageOutcome,
  type ReaderCore,
} from '../../src/tracefs/reader-core.js';
import { MODE_PACKET, MODE_SUMMARY, NO_VALUE, type SummaryRow } from '../../src/tracefs/reader-protocol.js';
import {
  captureCpus,
  capturePages,
  captureStats,
  kallsyms,
  loadCapture,
  textRecords,
  type Capture,
  type TextRecord,
} from './fixtures.js';

const basic = loadCapture('basic');
const overrun = loadCapture('overrun');

function core(c: Capture, more: { mode?: number; maxPending?: number; cpus?: number[] } = {}): ReaderCore {
  return createReaderCore({
    cpus: more.cpus ?? captureCpus(c),
    layouts: c.layouts,
    skb: c.skb,
    pageSize: c.pageSize,
    maxPending: more.maxPending ?? 65536,
    mode: more.mode ?? MODE_SUMMARY,
  });
}

/** Feeds every captured page of every CPU, in read order; returns each page's outcome. */
function feedAll(r: ReaderCore, c: Capture): PageOutcome[] {
  const out: PageOutcome[] = [];
  captureCpus(c).forEach((cpu, i) => {
    for (const p of capturePages(c, cpu)) out.push(r.feed(i, p));
  });
  return out;
}

/** The stats a full read leaves: the kernel counts every record it hands a reader as read (`read events`). */
function afterFullRead(c: Capture): CpuStats[] {
  return captureCpus(c).map((cpu) => {
    const s = captureStats(c, cpu);
    return { ...s, entries: 0, readEvents: s.entries };
  });
}

/** A text-trace record's pc: its symbol's address (the capture saved one per symbol) plus the offset. */
function pcOf(c: Capture, t: TextRecord): bigint {
  const bases = kallsyms(c).get(t.symbol) ?? [];
  assert.equal(bases.length, 1, `one address for ${t.symbol}`);
  return bases[0]! + t.offset;
}

function reasonOf(c: Capture, name: string): number {
  const hit = [...c.skb.reasons].find(([, n]) => n === name);
  assert.ok(hit, `reason ${name} in the format's table`);
  return hit[0];
}

/** "pc:reason" → count, from summary rows; a key appears once per take. */
function rowsByKey(rows: SummaryRow[] | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const [hi, lo, reason, count] of rows ?? []) {
    const key = `${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}:${reason}`;
    assert.equal(out.has(key), false, `${key} twice in one take`);
    out.set(key, count);
  }
  return out;
}

/** "pc:reason" → count from text records; `pick` may replace a record's pc or reason (for altered pages). */
function textByKey(
  c: Capture,
  text: TextRecord[],
  pick: (t: TextRecord, i: number) => { pc?: bigint; reason?: number } = () => ({}),
): Map<string, number> {
  const out = new Map<string, number>();
  text.forEach((t, i) => {
    const p = pick(t, i);
    const key = `${(p.pc ?? pcOf(c, t)).toString(16)}:${p.reason ?? reasonOf(c, t.reason)}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  });
  return out;
}

const total = (rows: SummaryRow[] | null): number => (rows ?? []).reduce((s, r) => s + r[3], 0);
const lostOf = (reports: LostReport[], cpu: number) => reports.find((r) => r.cpu === cpu);

/**
 * Where each kfree_skb record's payload starts on a page, found without the decoder: the records' locations (from
 * the text trace and kallsyms) are searched for as 8-byte values at the location field's offset.
 */
function payloadOffsets(c: Capture, page: Uint8Array, text: TextRecord[]): number[] {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const pcs = new Set(text.map((t) => pcOf(c, t)));
  const found: number[] = [];
  for (let at = c.layouts.page.dataOffset; at + 8 <= page.length; at += 4) {
    if (pcs.has(view.getBigUint64(at, true))) found.push(at - c.skb.location.offset);
  }
  assert.deepEqual(
    found.map((p) => view.getBigUint64(p + c.skb.location.offset, true)),
    text.map((t) => pcOf(c, t)),
    'one location per text record, in order',
  );
  for (const p of found) {
    // Each is a short data record: a 4-byte header whose 5-bit type_len gives the payload length in words.
    assert.ok((view.getUint32(p - 4, true) & 31) * 4 >= c.skb.minLength, `record header before ${p}`);
  }
  return found;
}

test('summary: counts per (location, reason) equal the text trace of the same buffer', () => {
  for (const c of [basic, overrun]) {
    const r = core(c);
    feedAll(r, c);
    const rows = r.takeSummary();
    assert.deepEqual(rowsByKey(rows), textByKey(c, textRecords(c)));
    // And the kernel's own count of what the buffer held.
    const entries = captureCpus(c).reduce((s, cpu) => s + captureStats(c, cpu).entries, 0);
    assert.equal(total(rows), entries);
    assert.equal(r.takeSummary(), null, 'a take empties the counts');
    assert.equal(r.takePackets(), null, 'summary mode queues no packets');
  }
  // The basic capture has both IPv4 and IPv6 locations, so more than one row.
  assert.equal(textByKey(basic, textRecords(basic)).size, 2);
});

test('summary counts split across takes add up to the same', () => {
  const r = core(overrun);
  const pages = capturePages(overrun, 0);
  const sum = new Map<string, number>();
  for (const p of pages) {
    r.feed(0, p);
    for (const [k, n] of rowsByKey(r.takeSummary())) sum.set(k, (sum.get(k) ?? 0) + n);
  }
  assert.deepEqual(sum, textByKey(overrun, textRecords(overrun)));
});

test('summary: interleaved keys, high words and reasons beyond 2^20 are each counted exactly', () => {
  const text = textRecords(basic);
  const page = capturePages(basic, 0)[0]!;
  const at = payloadOffsets(basic, page, text);
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  // Reasons that change every record or two (breaking the run counting) and two that do not pack into a number key.
  const reasons = text.map((_, i) => [2, 3, 3, 0x200000, 7, 0xfffffffe][i % 6]!);
  // Record 2 of every 6 keeps its low word and reason but gets another high word, next to record 1 that does not.
  const HI = 0x12345678;
  at.forEach((p, i) => {
    view.setUint32(p + basic.skb.reason!.offset, reasons[i]!, true);
    if (i % 6 === 2) view.setUint32(p + basic.skb.location.offset + 4, HI, true);
  });
  const r = core(basic);
  r.feed(0, page);
  r.feed(0, page);
  const pick = (t: TextRecord, i: number) => ({
    reason: reasons[i]!,
    pc: i % 6 === 2 ? (BigInt(HI) << 32n) | (pcOf(basic, t) & 0xffffffffn) : pcOf(basic, t),
  });
  const want = new Map([...textByKey(basic, text, pick)].map(([k, n]) => [k, n * 2]));
  assert.deepEqual(rowsByKey(r.takeSummary()), want);
});

test('loss: only the kernel overrun is reported when every record handed over became a drop', () => {
  for (const c of [basic, overrun]) {
    const r = core(c);
    feedAll(r, c);
    const reports = r.takeLost(afterFullRead(c));
    const wantRing = captureCpus(c).map((cpu) => captureStats(c, cpu).overrun);
    assert.deepEqual(
      reports,
      wantRing.flatMap((ring, i) =>
        ring > 0 ? [{ type: 'lost', cpu: captureCpus(c)[i]!, ring, backlog: 0, undecoded: 0 }] : [],
      ),
    );
  }
});

test('overrun: ring loss is the kernel overrun counter, from page headers, stats or both, never their sum', () => {
  const stats = afterFullRead(overrun);
  const kernel = captureStats(overrun, 0).overrun;
  assert.ok(kernel > 0, 'the capture overran');
  const reading = [{ type: 'lost', cpu: 0, ring: kernel, backlog: 0, undecoded: 0 }];

  // Stats unreadable: the missed-events count the kernel stored on the page says the same.
  const a = core(overrun);
  feedAll(a, overrun);
  assert.deepEqual(a.takeLost([null, null]), reading);
  assert.deepEqual(a.takeLost(stats), [], 'the stats agree: nothing new');
  assert.deepEqual(a.takeLost(stats), [], 'reported once');

  // Stats first (before any page), then the pages carrying the same loss.
  const b = core(overrun);
  assert.deepEqual(b.takeLost([{ ...stats[0]!, readEvents: 0 }, stats[1]!]), reading);
  feedAll(b, overrun);
  assert.deepEqual(b.takeLost(stats), [], 'page headers repeat the overrun counter; not added again');

  // The CPU numbers come from the options, not the feed index.
  const c = core(overrun, { cpus: [5, 9] });
  feedAll(c, overrun);
  assert.deepEqual(c.takeLost([null, null]), [{ ...reading[0]!, cpu: 5 }]);
});

test('page outcomes: caught up below half a page, full at or above it', () => {
  const outcomes = [...feedAll(core(basic), basic), ...feedAll(core(overrun), overrun)];
  const pages = [...capturePages(basic, 0), ...capturePages(overrun, 0)];
  const commit = (p: Uint8Array) =>
    new DataView(p.buffer, p.byteOffset).getUint32(basic.layouts.page.commitOffset, true) & 0x3fffffff;
  assert.deepEqual(
    outcomes,
    pages.map((p) => (commit(p) < basic.layouts.page.dataSize / 2 ? PAGE_CAUGHT_UP : PAGE_FULL)),
  );
  assert.ok(outcomes.includes(PAGE_CAUGHT_UP) && outcomes.includes(PAGE_FULL), 'both kinds in the captures');
});

test('a record of another event is not a drop: it is counted undecoded, exactly', () => {
  const text = textRecords(basic);
  const page = capturePages(basic, 0)[0]!;
  const at = payloadOffsets(basic, page, text);
  const k = 7;
  new DataView(page.buffer, page.byteOffset).setUint16(
    at[k]! + basic.skb.commonType.offset,
    (basic.skb.eventId + 1) & 0xffff,
    true,
  );
  const r = core(basic);
  assert.equal(r.feed(0, page), PAGE_CAUGHT_UP);
  assert.deepEqual(rowsByKey(r.takeSummary()), textByKey(basic, [...text.slice(0, k), ...text.slice(k + 1)]));
  assert.deepEqual(r.takeLost(afterFullRead(basic)), [{ type: 'lost', cpu: 0, ring: 0, backlog: 0, undecoded: 1 }]);
});

test('a bad record mid-page: the records before it are drops, the rest of the page is undecoded', () => {
  const text = textRecords(basic);
  for (const k of [0, 1, 13, text.length - 1]) {
    const page = capturePages(basic, 0)[0]!;
    const at = payloadOffsets(basic, page, text);
    const view = new DataView(page.buffer, page.byteOffset);
    // A long-event header (type_len 0) whose length word runs far past the commit.
    view.setUint32(at[k]! - 4, 0, true);
    view.setUint32(at[k]!, 0xfffffff0, true);
    const r = core(basic);
    assert.equal(r.feed(0, page), PAGE_BAD);
    const err = r.takeDecodeError();
    assert.match(err ?? '', /^tracefs page: .*beyond commit/);
    assert.deepEqual(rowsByKey(r.takeSummary()), textByKey(basic, text.slice(0, k)));
    assert.deepEqual(r.takeLost(afterFullRead(basic)), [
      { type: 'lost', cpu: 0, ring: 0, backlog: 0, undecoded: text.length - k },
    ]);
  }
});

test('a short read (commit past the bytes read) is a bad page: all its records are undecoded', () => {
  const page = capturePages(basic, 0)[0]!;
  const r = core(basic);
  // Cut inside the data: the header still claims the whole commit.
  assert.equal(r.feed(0, page.subarray(0, basic.layouts.page.dataOffset + 100)), PAGE_BAD);
  assert.match(r.takeDecodeError() ?? '', /^tracefs page: commit \d+ beyond/);
  assert.equal(r.takeSummary(), null);
  const entries = captureStats(basic, 0).entries;
  assert.deepEqual(r.takeLost(afterFullRead(basic)), [
    { type: 'lost', cpu: 0, ring: 0, backlog: 0, undecoded: entries },
  ]);
  // Shorter than a page header.
  assert.equal(r.feed(0, page.subarray(0, 3)), PAGE_BAD);
  assert.match(r.takeDecodeError() ?? '', /short read/);
});

test('decode errors: the first few are reported, later ones only counted', () => {
  const page = capturePages(basic, 0)[0]!.subarray(0, 200);
  const r = core(basic);
  const reported: (string | null)[] = [];
  for (let i = 0; i < REPORTED_DECODE_ERRORS + 2; i++) {
    assert.equal(r.feed(0, page), PAGE_BAD);
    reported.push(r.takeDecodeError());
  }
  assert.equal(reported.filter((m) => m !== null).length, REPORTED_DECODE_ERRORS);
  assert.deepEqual(reported.slice(REPORTED_DECODE_ERRORS), [null, null]);
  assert.equal(r.takeDecodeError(), null, 'a take clears it');
  // Every one of those pages' records is still accounted for.
  const n = captureStats(basic, 0).entries * (REPORTED_DECODE_ERRORS + 2);
  const s = afterFullRead(basic);
  assert.equal(lostOf(r.takeLost([{ ...s[0]!, readEvents: n }, s[1]!]), 0)?.undecoded, n);
  // A good page after bad ones decodes normally.
  assert.equal(r.feed(0, capturePages(basic, 0)[0]!), PAGE_CAUGHT_UP);
  assert.equal(total(r.takeSummary()), captureStats(basic, 0).entries);
});

test('damaged pages: every record the kernel handed over is a drop or counted undecoded, exactly', () => {
  const good = capturePages(basic, 0)[0]!;
  const readEvents = captureStats(basic, 0).entries;
  const outcomes = new Set<number>();
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.nat(good.length - 1), value: fc.nat(255) }), { minLength: 1, maxLength: 8 }),
      fc.option(fc.nat(good.length), { freq: 4 }),
      (flips, cut) => {
        const page = new Uint8Array(good);
        for (const f of flips) page[f.at] = f.value;
        const r = core(basic);
        outcomes.add(r.feed(0, cut === null ? page : page.subarray(0, cut)));
        const drops = total(r.takeSummary());
        const s = afterFullRead(basic);
        const undecoded = lostOf(r.takeLost([{ ...s[0]!, readEvents }, s[1]!]), 0)?.undecoded ?? 0;
        // Garbage may even decode as extra kfree_skb records; then nothing is counted lost.
        assert.equal(drops + undecoded, Math.max(readEvents, drops));
      },
    ),
    { numRuns: 2000 },
  );
  assert.ok(outcomes.has(PAGE_BAD) && outcomes.has(PAGE_CAUGHT_UP), 'damage both breaks and spares pages');
});

test('packet mode: one record per drop with the pc, reason, protocol and time of the text trace', () => {
  for (const c of [basic, overrun]) {
    const r = core(c, { mode: MODE_PACKET });
    feedAll(r, c);
    const text = textRecords(c);
    const b = r.takePackets();
    assert.ok(b);
    assert.equal(b.type, 'packets');
    assert.equal(b.count, text.length);
    assert.equal(b.ts.length, text.length, 'arrays cut to the count');
    assert.equal(b.reasonProtocolPairs.length, text.length * 2);
    text.forEach((t, i) => {
      assert.equal(b.loc[i], pcOf(c, t), `#${i} pc`);
      assert.equal(b.reasonProtocolPairs[i * 2], reasonOf(c, t.reason), `#${i} reason`);
      assert.equal(b.reasonProtocolPairs[i * 2 + 1], t.protocol, `#${i} protocol`);
      // The text trace prints microseconds rounded to nearest.
      assert.equal((b.ts[i]! + 500n) / 1000n, t.usecs, `#${i} time`);
    });
    assert.equal(r.takePackets(), null, 'a take empties the batch');
    assert.equal(r.takeSummary(), null, 'packet mode counts no summary');
    for (const l of r.takeLost(afterFullRead(c))) assert.deepEqual([l.backlog, l.undecoded], [0, 0]);
  }
});

test('a layout without reason or protocol fields and a 4-byte location (older, 32-bit kernels)', () => {
  const text = textRecords(basic);
  const page = capturePages(basic, 0)[0]!;
  const skb = { ...basic.skb, reason: null, protocol: null, location: { ...basic.skb.location, size: 4 } };
  const opts = { cpus: [0], layouts: basic.layouts, skb, pageSize: basic.pageSize, maxPending: 100 };
  const low = (t: TextRecord) => pcOf(basic, t) & 0xffffffffn;

  const p = createReaderCore({ ...opts, mode: MODE_PACKET });
  p.feed(0, page);
  const b = p.takePackets()!;
  assert.deepEqual([...b.loc], text.map(low));
  assert.ok(b.reasonProtocolPairs.every((v) => v === NO_VALUE));

  const s = createReaderCore({ ...opts, mode: MODE_SUMMARY });
  s.feed(0, page);
  assert.deepEqual(
    rowsByKey(s.takeSummary()),
    textByKey(basic, text, (t) => ({ pc: low(t), reason: NO_VALUE })),
  );
});

test('packet backlog: records beyond maxPending are counted lost on their CPU, and are not also undecoded', () => {
  const text = textRecords(basic);
  const r = core(basic, { mode: MODE_PACKET, maxPending: 7 });
  r.feed(0, capturePages(basic, 0)[0]!);
  const b = r.takePackets()!;
  assert.equal(b.count, 7);
  assert.deepEqual(
    [...b.loc],
    text.slice(0, 7).map((t) => pcOf(basic, t)),
  );
  assert.deepEqual(r.takeLost(afterFullRead(basic)), [
    { type: 'lost', cpu: 0, ring: 0, backlog: text.length - 7, undecoded: 0 },
  ]);
  // After a take there is room again; backlog stays cumulative.
  r.feed(0, capturePages(basic, 0)[0]!);
  assert.equal(r.takePackets()!.count, 7);
  const s = afterFullRead(basic);
  assert.deepEqual(r.takeLost([{ ...s[0]!, readEvents: text.length * 2 }, s[1]!]), [
    { type: 'lost', cpu: 0, ring: 0, backlog: (text.length - 7) * 2, undecoded: 0 },
  ]);
});

test('packet batch grows past its starting size up to maxPending, keeping every record in order', () => {
  const text = textRecords(overrun);
  const rounds = Math.ceil(5000 / text.length); // past the 4096 records the batch starts with
  const n = text.length * rounds;
  for (const maxPending of [n + 1000, n - 100]) {
    const r = core(overrun, { mode: MODE_PACKET, maxPending });
    for (let i = 0; i < rounds; i++) feedAll(r, overrun);
    const b = r.takePackets()!;
    const kept = Math.min(n, maxPending);
    assert.equal(b.count, kept);
    for (let i = 0; i < kept; i++) {
      const t = text[i % text.length]!;
      if (b.loc[i] !== pcOf(overrun, t) || (b.ts[i]! + 500n) / 1000n !== t.usecs)
        assert.fail(`record ${i} is not text record ${i % text.length}`);
    }
    const s = afterFullRead(overrun);
    const lost = r.takeLost([{ ...s[0]!, readEvents: n }, s[1]!]);
    assert.equal(lostOf(lost, 0)?.backlog, n - kept);
    assert.equal(lostOf(lost, 0)?.undecoded, 0);
  }
});

test('mode change: what was gathered stays in its shape; flush hands out summary, packets, then loss', () => {
  const page = capturePages(basic, 0)[0]!;
  const r = core(basic);
  r.feed(0, page);
  r.mode = MODE_PACKET;
  assert.equal(r.mode, MODE_PACKET);
  r.feed(0, page);
  const s = afterFullRead(basic);
  const out = r.flush([{ ...s[0]!, readEvents: 61 }, s[1]!]);
  assert.deepEqual(
    out.map((m) => m.type),
    ['summary', 'packets', 'lost'],
  );
  assert.equal(total(out[0]!.type === 'summary' ? out[0]!.rows : null), 30);
  assert.equal(out[1]!.type === 'packets' ? out[1]!.count : -1, 30);
  assert.deepEqual(out[2], { type: 'lost', cpu: 0, ring: 0, backlog: 0, undecoded: 1 });
  assert.deepEqual(r.flush(s), [], 'nothing new');
});

test("the core's own page buffer is decoded in place; other bytes are copied in", () => {
  const page = capturePages(basic, 0)[0]!;
  const a = core(basic);
  a.page.set(page);
  assert.equal(a.feed(0, a.page), PAGE_CAUGHT_UP);
  // A read shorter than a page, as trace_pipe_raw gives for the page the writer is filling.
  const bytes = Number(/^bytes: (\d+)/m.exec(readFileSync(join(basic.dir, 'cpu0.stats'), 'utf8'))![1]);
  const used = basic.layouts.page.dataOffset + bytes;
  a.page.fill(0xff, used);
  assert.equal(a.feed(0, a.page.subarray(0, used)), PAGE_CAUGHT_UP);
  // From an odd offset into some other buffer.
  const big = new Uint8Array(page.length + 3);
  big.set(page, 3);
  assert.equal(a.feed(0, big.subarray(3)), PAGE_CAUGHT_UP);
  assert.equal(total(a.takeSummary()), 3 * textRecords(basic).length);
});

test('bad arguments are E_BAD_INPUT', () => {
  const r = core(basic);
  const bad = (e: unknown) => e instanceof DropwatchError && e.code === 'E_BAD_INPUT';
  assert.throws(() => r.feed(0, new Uint8Array(basic.pageSize + 1)), bad);
  assert.throws(() => r.feed(2, new Uint8Array(16)), bad);
  assert.throws(() => r.feed(-1, new Uint8Array(16)), bad);
  assert.throws(() => r.takeLost([null]), bad);
  assert.throws(() => core(basic, { cpus: [0] }).takeLost([null, null]), bad);
});
