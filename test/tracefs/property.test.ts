// The ring-buffer page decoder against damaged input: the real pages captured from this kernel
// (test/fixtures/tracefs), with bytes flipped, words overwritten, pieces cut out and pages truncated. Whatever the
// bytes, the decoder returns a result or throws DropwatchError E_DECODE (which the reader counts and reports), never
// another error, never a record outside the page, and it always terminates: every step moves forward by at least 4
// bytes (checked here by bounding the records a page can yield), and the runs are count-limited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeKfreeSkbPage, decodePage, type PageLayouts } from '../../src/tracefs/page.js';
import { DropwatchError } from '../../src/errors/index.js';
import { capturePages, loadCapture } from './fixtures.js';

const basic = loadCapture('basic');
const layouts: PageLayouts = basic.layouts;
const skb = basic.skb;
const PAGE = basic.pageSize;

/** Every captured page that holds data (basic: one page; overrun: three, with missed-event counts). */
const pages: Uint8Array[] = ['basic', 'overrun'].flatMap((name) => capturePages(loadCapture(name), 0));

/** Runs the decoder and checks its contract; returns 'ok' or 'decode-error'. */
function decodeChecked(bytes: Uint8Array): 'ok' | 'decode-error' {
  const visited: [number, number][] = [];
  try {
    const info = decodePage(bytes, layouts, (off, len) => visited.push([off, len]));
    // Records lie inside the committed data, and there are at most as many as 4-byte steps fit in it.
    assert.ok(info.dataLength <= bytes.length - layouts.page.dataOffset);
    assert.ok(info.records <= Math.ceil(info.dataLength / 4), `${info.records} records in ${info.dataLength} bytes`);
    assert.equal(visited.length, info.records);
    for (const [off, len] of visited) {
      assert.ok(off >= layouts.page.dataOffset && len >= 0 && off + len <= bytes.length, `record ${off}+${len}`);
    }
    if (info.missedCount !== null) assert.ok(Number.isFinite(info.missedCount) && info.missedCount >= 0);
    // The kfree_skb layer reads fields inside each record: same contract.
    const { drops } = decodeKfreeSkbPage(bytes, layouts, skb);
    assert.ok(drops.length <= info.records);
    for (const d of drops) assert.ok(d.reasonName === null || typeof d.reasonName === 'string');
    return 'ok';
  } catch (err) {
    if (err instanceof DropwatchError && err.code === 'E_DECODE') {
      assert.ok(!err.message.includes('\n'), 'one-line message');
      return 'decode-error';
    }
    throw err;
  }
}

test('the unmodified captured pages decode', () => {
  for (const p of pages) assert.equal(decodeChecked(p), 'ok');
});

const page = fc.constantFrom(...pages.keys());
/** Offsets weighted toward the header and the first records, where one bad word changes the whole walk. */
const offset = fc.oneof(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 0, max: PAGE - 1 }));
const word = fc.oneof(
  fc.constantFrom(0, 1, 4, 0x1d, 0x1e, 0x1f, 0x3fffffff, 0x40000000, 0x80000000, 0xc0000fe8, 0xfffffffc, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
type Mutation =
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'word'; at: number; value: number }
  | { kind: 'cut'; at: number; length: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: offset, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('word' as const), at: offset, value: word }),
  fc.record({ kind: fc.constant('cut' as const), at: offset, length: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(source: Uint8Array, mutations: readonly Mutation[], truncate: number | null): Uint8Array {
  let bytes = new Uint8Array(source);
  for (const m of mutations) {
    if (m.kind === 'byte') bytes[m.at % bytes.length] = m.value;
    else if (m.kind === 'word') {
      const at = Math.min(m.at, bytes.length - 4) & ~3;
      if (at >= 0) new DataView(bytes.buffer).setUint32(at, m.value, true);
    } else {
      // Bytes lost from the middle (what a short or torn read looks like), the rest shifted down.
      const at = m.at % bytes.length;
      const length = Math.min(m.length, bytes.length - at);
      const joined = new Uint8Array(bytes.length - length);
      joined.set(bytes.subarray(0, at));
      joined.set(bytes.subarray(at + length), at);
      if (joined.length >= 4) bytes = joined;
    }
  }
  return truncate === null ? bytes : bytes.subarray(0, Math.min(truncate, bytes.length));
}

test('mutated real pages: a result or E_DECODE, records inside the page, always terminating', () => {
  const outcomes = { ok: 0, 'decode-error': 0 };
  fc.assert(
    fc.property(
      page,
      fc.array(mutation, { minLength: 1, maxLength: 6 }),
      fc.option(fc.integer({ min: 0, max: PAGE }), { freq: 3 }),
      (i, mutations, truncate) => {
        outcomes[decodeChecked(mutate(pages[i]!, mutations, truncate))]++;
      },
    ),
    { numRuns: 20_000 },
  );
  // Both outcomes really happen: the mutations reach the decoder's checks rather than being all benign or all fatal.
  assert.ok(outcomes.ok > 100 && outcomes['decode-error'] > 100, JSON.stringify(outcomes));
});

test('every truncation of every real page: a result or E_DECODE', () => {
  for (const p of pages) for (let n = 0; n <= PAGE; n += 3) decodeChecked(p.subarray(0, n));
});

test('random bytes behind a real page header', () => {
  fc.assert(
    fc.property(page, fc.uint8Array({ minLength: 0, maxLength: PAGE }), (i, tail) => {
      const bytes = new Uint8Array(layouts.page.dataOffset + tail.length);
      bytes.set(pages[i]!.subarray(0, layouts.page.dataOffset));
      bytes.set(tail, layouts.page.dataOffset);
      decodeChecked(bytes);
    }),
    { numRuns: 500 },
  );
});

test('unaligned views: the page at an odd offset inside a larger buffer decodes the same', () => {
  // The reader hands the decoder subarrays; DataView offsets must be relative to the view, not the buffer.
  for (const p of pages) {
    const big = new Uint8Array(p.length + 3);
    big.set(p, 3);
    assert.deepEqual(
      decodeKfreeSkbPage(big.subarray(3), layouts, skb).drops,
      decodeKfreeSkbPage(p, layouts, skb).drops,
    );
  }
});
