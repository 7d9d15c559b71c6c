// Benchmark 3: the kallsyms resolver. Index build time on the live /proc/kallsyms (after the read), lookups per second
// on real kernel addresses, and the same 1,000 distinct addresses through dropwatch's own method (createRescanResolver:
// a re-read and full scan of kallsyms on every cache miss), which is the anchor.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cachedResolver, parseKallsyms } from '../src/symbols/index.js';
import { createRescanResolver } from './rescan.js';
import { median, spread, type Spread } from './lib/stats.js';

export interface ResolverResult {
  lines: number;
  readMs: Spread;
  /** First build in this process (cold JIT), then the warm repeats. */
  buildColdMs: number;
  /** The first build in each of several fresh node processes: what one dropwatch run pays. */
  buildFreshMs: Spread;
  buildWarmMs: Spread;
  lookupsPerSec: Spread;
  cachedLookupsPerSec: Spread;
  distinct: number;
  /** Ours for `distinct` addresses from nothing: read + build + one lookup each. */
  oursTotalMs: number;
  /** dropwatch's method for the same addresses (measured, or extrapolated when the time cap was hit). */
  rescanTotalMs: number;
  rescanMeasured: number;
  rescanPerMissMs: number;
  ratio: number;
  mismatches: number;
  notes: string[];
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Distinct real addresses: one inside each of `n` randomly chosen text symbols (midway to the next symbol). */
function realAddresses(text: string, n: number): bigint[] {
  const addrs: bigint[] = [];
  for (const line of text.split('\n')) {
    const [hex, type] = line.split(/\s+/);
    if (!hex || !type || !/^[tT]$/.test(type)) continue;
    const a = BigInt(`0x${hex}`);
    if (a !== 0n) addrs.push(a);
  }
  addrs.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const picked = new Set<bigint>();
  // A fixed LCG seed so every run looks up the same symbols.
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  while (picked.size < Math.min(n, addrs.length - 1)) {
    const i = Math.floor(rand() * (addrs.length - 1));
    const gap = addrs[i + 1]! - addrs[i]!;
    if (gap <= 1n) continue;
    picked.add(addrs[i]! + gap / 2n);
  }
  return [...picked];
}

// Run in a child: read kallsyms, then time one parseKallsyms with nothing JIT-compiled yet.
const FRESH = `
const { readFileSync } = await import('node:fs');
const { parseKallsyms } = await import(process.argv[1]);
const text = readFileSync('/proc/kallsyms', 'latin1');
const t0 = process.hrtime.bigint();
parseKallsyms(text);
console.log(Number(process.hrtime.bigint() - t0) / 1e6);
`;

function freshBuilds(n: number): number[] {
  const mod = fileURLToPath(new URL('../src/symbols/index.js', import.meta.url));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', FRESH, mod], { encoding: 'utf8' });
    const ms = Number(r.stdout.trim());
    if (r.status === 0 && Number.isFinite(ms)) out.push(ms);
  }
  return out;
}

export function runResolver(opts: {
  distinct: number;
  buildRepeats: number;
  freshRuns: number;
  rescanCapMs: number;
}): ResolverResult {
  const notes: string[] = [];
  const buildFreshMs = spread(freshBuilds(opts.freshRuns));
  const reads: number[] = [];
  let text = '';
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    text = readFileSync('/proc/kallsyms', 'latin1');
    reads.push(now() - t0);
  }
  const t0 = now();
  let index = parseKallsyms(text);
  const buildColdMs = now() - t0;
  const warm: number[] = [];
  for (let i = 0; i < opts.buildRepeats; i++) {
    const t = now();
    index = parseKallsyms(text);
    warm.push(now() - t);
  }
  if (index.hidden) notes.push('kallsyms addresses are hidden (kptr_restrict): lookups resolve nothing');

  const addrs = realAddresses(text, opts.distinct);
  const rates: number[] = [];
  const cachedRates: number[] = [];
  let sink = 0;
  for (let rep = 0; rep < 5; rep++) {
    // Enough lookups for ~100+ ms per sample, so timer resolution and GC noise stay small.
    const n = 2_000_000;
    let t = now();
    for (let i = 0; i < n; i++) sink += index.resolve(addrs[i % addrs.length]!) === null ? 0 : 1;
    rates.push(n / ((now() - t) / 1000));
    const cached = cachedResolver((pc) => index.resolve(pc));
    t = now();
    for (let i = 0; i < n; i++) sink += cached(addrs[i % addrs.length]!) === null ? 0 : 1;
    cachedRates.push(n / ((now() - t) / 1000));
  }
  if (sink === 0) notes.push('no address resolved');

  // Ours, from nothing, for the distinct addresses: read + build + a lookup each (what a first storm costs).
  let t = now();
  const fresh = parseKallsyms(readFileSync('/proc/kallsyms', 'latin1'));
  const ours = addrs.map((a) => fresh.resolve(a));
  const oursTotalMs = now() - t;

  // dropwatch's method: every distinct address misses its range cache, so each one re-reads and scans the file.
  const rescan = createRescanResolver(() => readFileSync('/proc/kallsyms', 'latin1'));
  let measured = 0;
  let mismatches = 0;
  t = now();
  for (const a of addrs) {
    const r = rescan(a);
    const o = ours[measured];
    if (r?.symbol !== o?.symbol || r?.offset !== o?.offset) mismatches++;
    measured++;
    if (now() - t > opts.rescanCapMs) break;
  }
  const rescanMs = now() - t;
  const perMiss = rescanMs / measured;
  const rescanTotalMs = measured === addrs.length ? rescanMs : perMiss * addrs.length;
  if (measured < addrs.length)
    notes.push(
      `rescan stopped after ${measured} of ${addrs.length} addresses (${(opts.rescanCapMs / 1000).toFixed(0)} s cap); total extrapolated at ${perMiss.toFixed(1)} ms per miss`,
    );
  if (mismatches > 0) notes.push(`${mismatches} addresses resolved differently by the two methods`);
  return {
    lines: index.lineCount,
    readMs: spread(reads),
    buildColdMs,
    buildFreshMs,
    buildWarmMs: spread(warm),
    lookupsPerSec: spread(rates),
    cachedLookupsPerSec: spread(cachedRates),
    distinct: addrs.length,
    oursTotalMs,
    rescanTotalMs,
    rescanMeasured: measured,
    rescanPerMissMs: perMiss,
    ratio: rescanTotalMs / oursTotalMs,
    mismatches,
    notes,
  };
}

export { median };
