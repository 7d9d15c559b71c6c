// The kernel filter as the BPF program reads it (pure): per-field sets (src/filter/sets.ts) into the DW_FILTER_* word
// and the struct dw_filter_key records (field, value, device name) of bpf/dropwatch.h's filter_values map.
import type { KernelSet, KernelSetField, KernelSets } from '../backend/types.js';

/** DW_FIELD_* in bpf/dropwatch.h. */
const FIELD_NUMBER: Readonly<Record<KernelSetField, number>> = {
  protocol: 0,
  reason: 1,
  netns: 2,
  ifindex: 3,
  ifname: 4,
};
/** struct dw_filter_key in uint32 words: field, value, then the 16-byte name. */
export const FILTER_KEY_WORDS = 6;
const NAME_BYTES = 16;
const FILTER_ON = 1 << 0;
const FILTER_NONE = 1 << 1;
const tests = (field: number): number => 1 << (8 + 2 * field);
const allows = (field: number): number => 1 << (9 + 2 * field);

/** How many values the sets may hold together: half of DW_FILTER_VALUES (the old generation stays while the new fills). */
export const MAX_FILTER_VALUES = 4096;

export interface EncodedFilter {
  word: number;
  /** FILTER_KEY_WORDS words a value. */
  values: Uint32Array;
}

/** One key: a number in `value`, or a name (one byte a character, NUL-padded) with a value of 0. */
function putKey(out: Uint32Array, at: number, field: number, value: number | string): void {
  out[at] = field;
  if (typeof value === 'number') {
    out[at + 1] = value >>> 0;
    return;
  }
  const name = Buffer.alloc(NAME_BYTES);
  name.write(value, 'latin1');
  for (let i = 0; i < NAME_BYTES / 4; i++) out[at + 2 + i] = name.readUInt32LE(4 * i);
}

/** The word and values for `sets`; null (no filter) is a word of 0 and no values. */
export function encodeFilter(sets: KernelSets | null): EncodedFilter {
  if (sets === null) return { word: 0, values: new Uint32Array(0) };
  if (sets.none) return { word: FILTER_ON | FILTER_NONE, values: new Uint32Array(0) };
  let word = FILTER_ON;
  const keys: [number, number | string][] = [];
  for (const [name, set] of Object.entries(sets.fields) as [KernelSetField, KernelSet][]) {
    const field = FIELD_NUMBER[name];
    word |= tests(field) | (set.allow ? allows(field) : 0);
    for (const value of set.values) keys.push([field, value]);
  }
  if (keys.length > MAX_FILTER_VALUES)
    throw new RangeError(`a kernel filter holds at most ${MAX_FILTER_VALUES} values, not ${keys.length}`);
  const values = new Uint32Array(keys.length * FILTER_KEY_WORDS);
  keys.forEach(([field, value], i) => putKey(values, i * FILTER_KEY_WORDS, field, value));
  return { word: word >>> 0, values };
}
