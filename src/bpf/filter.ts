// The kernel filter as the BPF program reads it (pure): per-field sets (src/filter/sets.ts) into the DW_FILTER_* word
// and the (field, value) pairs of bpf/dropwatch.h's filter_values map.
import type { KernelSetField, KernelSets } from '../backend/types.js';

/** DW_FIELD_* in bpf/dropwatch.h. */
const FIELD_NUMBER: Readonly<Record<KernelSetField, number>> = { protocol: 0, reason: 1, netns: 2, ifindex: 3 };
const FILTER_ON = 1 << 0;
const FILTER_NONE = 1 << 1;
const tests = (field: number): number => 1 << (8 + 2 * field);
const allows = (field: number): number => 1 << (9 + 2 * field);

/** How many values the sets may hold together: half of DW_FILTER_VALUES (the old generation stays while the new fills). */
export const MAX_FILTER_VALUES = 4096;

export interface EncodedFilter {
  word: number;
  values: Uint32Array;
}

/** The word and values for `sets`; null (no filter) is a word of 0 and no values. */
export function encodeFilter(sets: KernelSets | null): EncodedFilter {
  if (sets === null) return { word: 0, values: new Uint32Array(0) };
  if (sets.none) return { word: FILTER_ON | FILTER_NONE, values: new Uint32Array(0) };
  let word = FILTER_ON;
  const pairs: number[] = [];
  for (const [name, set] of Object.entries(sets.fields) as [KernelSetField, { allow: boolean; values: number[] }][]) {
    const field = FIELD_NUMBER[name];
    word |= tests(field) | (set.allow ? allows(field) : 0);
    for (const value of set.values) pairs.push(field, value >>> 0);
  }
  if (pairs.length / 2 > MAX_FILTER_VALUES)
    throw new RangeError(`a kernel filter holds at most ${MAX_FILTER_VALUES} values, not ${pairs.length / 2}`);
  return { word: word >>> 0, values: Uint32Array.from(pairs) };
}
