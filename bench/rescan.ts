// dropwatch's own lookup (lookup_kas.c) re-done as the anchor for the resolver bench and tests: a range-list cache, and a
// full rescan of the kallsyms text on every miss.

import type { Resolved } from '../src/symbols/index.js';

interface CachedRange {
  start: bigint;
  end: bigint;
  symbol: string;
  module: string | undefined;
}

const LLONG_MAX = 0x7fffffffffffffffn;
const HEX = /^[0-9a-fA-F]{1,16}$/;

/**
 * Returns a resolver that behaves like dropwatch's kas method: `readText` is called on every cache miss (pass a
 * function that re-reads /proc/kallsyms to reproduce its cost). Only for benchmarks and cross-checking.
 */
export function createRescanResolver(readText: () => string): (pc: bigint) => Resolved | null {
  // Newest first, as LIST_INSERT_HEAD leaves it.
  const cache: CachedRange[] = [];

  const fromCache = (pc: bigint): Resolved | null => {
    for (const r of cache) {
      if (pc >= r.start && pc <= r.end) return result(r.symbol, pc - r.start, r.module);
    }
    return null;
  };

  const updateCache = (start: bigint, end: bigint, symbol: string, module: string | undefined): void => {
    for (const r of cache) {
      if (r.start === start) {
        if (end > r.end) r.end = end;
        return;
      }
    }
    cache.unshift({ start, end, symbol, module });
  };

  return (pc: bigint): Resolved | null => {
    const hit = fromCache(pc);
    if (hit) return hit;

    let minDelta = LLONG_MAX;
    let base = 0n;
    let best: string | undefined;
    let bestModule: string | undefined;
    const text = readText();
    for (let pos = 0; pos < text.length;) {
      let eol = text.indexOf('\n', pos);
      if (eol < 0) eol = text.length;
      // "%llx %*s %ms [ %*[^]] ]"
      const fields = text.slice(pos, eol).trim().split(/\s+/);
      pos = eol + 1;
      const hex = fields[0]!;
      if (fields.length < 3 || !HEX.test(hex)) continue;
      const addr = BigInt('0x' + hex);
      if (addr > pc) continue;
      const delta = pc - addr;
      if (delta < minDelta) {
        minDelta = delta;
        best = fields[2]!;
        const tail = fields[3];
        bestModule = tail !== undefined && tail.startsWith('[') && tail.endsWith(']') ? tail.slice(1, -1) : undefined;
        base = addr;
      }
    }
    if (base === 0n || best === undefined) return null;
    updateCache(base, base + minDelta, best, bestModule);
    return result(best, minDelta, bestModule);
  };
}

function result(symbol: string, offset: bigint, module: string | undefined): Resolved {
  return module === undefined ? { symbol, offset } : { symbol, offset, module };
}
