// The kernel filter's encoding for the BPF program (pure): the DW_FILTER_* word and the struct dw_filter_key records
// (field, value, 16-byte device name) as uint32 words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFilter, MAX_FILTER_VALUES } from '../../src/bpf/filter.js';

test('no filter is a word of 0; nothing passes is ON|NONE; each tested field sets its test and allow bits', () => {
  assert.deepEqual(encodeFilter(null), { word: 0, values: new Uint32Array(0) });
  assert.deepEqual(encodeFilter({ none: true, fields: {} }), { word: 0b11, values: new Uint32Array(0) });
  const { word, values } = encodeFilter({
    none: false,
    fields: { protocol: { allow: true, values: [0x800] }, ifindex: { allow: false, values: [2, 3] } },
  });
  // protocol (field 0): bits 8 and 9; ifindex (field 3): bit 14 only (a deny set).
  assert.equal(word, 1 | (1 << 8) | (1 << 9) | (1 << 14));
  assert.deepEqual([...values], [0, 0x800, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0]);
});

test('a device name set: field 4, value 0, the name NUL-padded to 16 bytes, one byte a character', () => {
  const { word, values } = encodeFilter({
    none: false,
    fields: { ifname: { allow: true, values: ['eth0', 'verylongname012'] } },
  });
  assert.equal(word, 1 | (1 << 16) | (1 << 17));
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  assert.equal(bytes.length, 2 * 24);
  assert.deepEqual([bytes.readUInt32LE(0), bytes.readUInt32LE(4)], [4, 0]);
  assert.equal(bytes.subarray(8, 24).toString('latin1'), 'eth0'.padEnd(16, '\0'));
  assert.equal(bytes.subarray(32, 48).toString('latin1'), 'verylongname012\0');
});

test('netns inodes past 2^31 stay unsigned; more than the map holds is refused', () => {
  const { values } = encodeFilter({ none: false, fields: { netns: { allow: true, values: [4026532173] } } });
  assert.deepEqual([...values], [2, 4026532173, 0, 0, 0, 0]);
  const many = Array.from({ length: MAX_FILTER_VALUES + 1 }, (_, i) => i);
  assert.throws(() => encodeFilter({ none: false, fields: { reason: { allow: true, values: many } } }), RangeError);
});
