// Decoder tests on ring-buffer pages captured from the real kernel (test/fixtures/tracefs/capture.mjs), checked
// against the kernel's own text rendering of the same buffer (trace.txt) and its per-CPU stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEventFormat } from '../../src/tracefs/format.js';
import { decodeKfreeSkbPage, decodePage, type KfreeSkbRecord } from '../../src/tracefs/page.js';
import { DropwatchError } from '../../src/errors/index.js';
import {
  captureCpus as cpus,
  capturePages,
  kallsyms,
  loadCapture as load,
  textRecords,
  type Capture,
} from './fixtures.js';

function decodeCpu(c: Capture, cpu: number): { drops: KfreeSkbRecord[]; missed: number; pages: number } {
  const drops: KfreeSkbRecord[] = [];
  let missed = 0;
  let pages = 0;
  for (const page of capturePages(c, cpu)) {
    const r = decodeKfreeSkbPage(page, c.layouts, c.skb);
    drops.push(...r.drops);
    missed += r.info.missedCount ?? 0;
    pages++;
  }
  return { drops, missed, pages };
}

function assertMatchesText(c: Capture): number {
  const text = textRecords(c);
  const syms = kallsyms(c);
  let total = 0;
  for (const cpu of cpus(c)) {
    const want = text.filter((t) => t.cpu === cpu);
    const { drops } = decodeCpu(c, cpu);
    assert.equal(
      drops.length,
      want.length,
      `cpu${cpu}: decoded ${drops.length} records, the text trace shows ${want.length}`,
    );
    drops.forEach((d, i) => {
      const t = want[i]!;
      const bases = syms.get(t.symbol) ?? [];
      assert.ok(
        bases.some((b) => b + t.offset === d.location),
        `cpu${cpu} #${i}: 0x${d.location.toString(16)} is not ${t.symbol}+0x${t.offset.toString(16)}`,
      );
      assert.equal(d.reasonName, t.reason, `cpu${cpu} #${i} reason`);
      assert.equal(d.protocol, t.protocol, `cpu${cpu} #${i} protocol`);
      // The text trace prints microseconds rounded to nearest (kernel ns2usecs adds 500 ns before dividing).
      assert.equal((d.timestamp + 500n) / 1000n, t.usecs, `cpu${cpu} #${i} timestamp`);
    });
    total += drops.length;
  }
  return total;
}

test('format parser reads offsets, id and the reason table from the real format file', () => {
  const c = load('basic');
  const fmt = parseEventFormat(readFileSync(join(c.dir, 'format'), 'utf8'));
  assert.equal(fmt.name, 'kfree_skb');
  assert.ok(fmt.id > 0);
  const off = (n: string): [number, number] | undefined => {
    const f = fmt.fields.get(n);
    return f && [f.offset, f.size];
  };
  assert.deepEqual(off('common_type'), [0, 2]);
  assert.deepEqual(off('skbaddr'), [8, 8]);
  assert.deepEqual(off('location'), [16, 8]);
  assert.deepEqual(off('rx_sk'), [24, 8]);
  assert.deepEqual(off('protocol'), [32, 2]);
  assert.deepEqual(off('reason'), [36, 4]);
  assert.equal(fmt.fields.get('reason')!.type, 'enum skb_drop_reason');
  assert.equal(fmt.symbols.get(2), 'NOT_SPECIFIED');
  assert.equal(fmt.symbols.get(3), 'NO_SOCKET');
  assert.ok(fmt.symbols.size > 50);
  assert.equal(c.skb.minLength, 40);
});

test('header_page and header_event parse to the layout ring_buffer.c uses', () => {
  const c = load('basic');
  assert.deepEqual(c.layouts.page, {
    timestampOffset: 0,
    timestampSize: 8,
    commitOffset: 8,
    commitSize: 8,
    dataOffset: 16,
    dataSize: c.pageSize - 16,
  });
  assert.deepEqual(c.layouts.event, {
    typeLenBits: 5,
    timeDeltaBits: 27,
    padding: 29,
    timeExtend: 30,
    timeStamp: 31,
    dataMaxTypeLen: 28,
  });
});

test('basic capture: every record decodes to the location, reason, protocol and time the text trace shows', () => {
  const c = load('basic');
  assert.equal(assertMatchesText(c), 30);
  // Three bursts 300 ms apart on one CPU: the gaps exceed 2^27 ns and must have come through time extends.
  const d = decodeCpu(c, 0).drops;
  const gaps = d.slice(1).map((x, i) => x.timestamp - d[i]!.timestamp);
  assert.ok(gaps.filter((g) => g > 1n << 27n).length >= 2, 'expected two gaps longer than a time_delta can hold');
  assert.ok(d.some((x) => x.protocol === 0x86dd) && d.some((x) => x.protocol === 0x800));
});

test('overrun capture: the stored missed-events count equals the kernel overrun counter', () => {
  const c = load('overrun');
  const n = assertMatchesText(c);
  let missed = 0;
  let overrun = 0;
  for (const cpu of cpus(c)) {
    missed += decodeCpu(c, cpu).missed;
    overrun += Number(/^overrun: (\d+)/m.exec(readFileSync(join(c.dir, `cpu${cpu}.stats`), 'utf8'))![1]);
  }
  assert.ok(overrun > 0, 'the capture should have overrun the buffer');
  assert.equal(missed, overrun);
  assert.equal(n + missed, 3000, 'every datagram sent is either decoded or counted as missed');
});

test('a page whose commit runs past the bytes read is a decode error, not a silent short read', () => {
  const c = load('basic');
  const raw = readFileSync(join(c.dir, 'cpu0.raw')).subarray(0, c.pageSize);
  const info = decodePage(raw, c.layouts);
  const cut = raw.subarray(0, c.layouts.page.dataOffset + info.dataLength - 8);
  assert.throws(
    () => decodePage(cut, c.layouts),
    (e: unknown) => e instanceof DropwatchError && e.code === 'E_DECODE',
  );
  // A record of another event (common_type differs) is walked over but not reported as a drop.
  const other = Buffer.from(raw);
  other.writeUInt16LE((c.skb.eventId + 1) & 0xffff, c.layouts.page.dataOffset + 4);
  const r = decodeKfreeSkbPage(other, c.layouts, c.skb);
  assert.equal(r.info.records, info.records);
  assert.equal(r.drops.length, info.records - 1);
});
