// What the tracefs reader gathers in summary mode between takes: drops per (location, reason), and sampled call chains
// per (location, reason, chain), kept within a per-second budget and never more than the drops counted. Pure.
import type { ChainRow, SummaryRow } from './reader-protocol.js';

const TWO32 = 4294967296;
/** Reasons below this pack with the location's low word into one exact double key; beyond it (never seen), strings. */
const PACKED_REASONS = 0x100000;
/** Distinct (location, reason, chain) kept between takes; samples of further chains count without their frames. */
export const MAX_CHAINS = 4096;
const NO_CALLERS = new BigUint64Array(0);

/** Drops per (location, reason); a storm is mostly one location, so runs of one key touch the maps once. */
export class SummaryCounts {
  /** Location high word → (low word + reason * 2^32) → count. */
  private packedCounts = new Map<number, Map<number, number>>();
  /** `hi:lo:reason` → count, for reasons too large to pack into a number key. */
  private unpackedCounts = new Map<string, number>();
  private drops = 0;
  private runHi = -1;
  private runKey = -1;
  private runCount = 0;

  /** One drop at location hi:lo (32-bit words) with this reason. */
  add(hi: number, lo: number, reason: number): void {
    if (reason < PACKED_REASONS) {
      const key = lo + reason * TWO32;
      if (key === this.runKey && hi === this.runHi) this.runCount++;
      else {
        this.endRun();
        this.runHi = hi;
        this.runKey = key;
        this.runCount = 1;
      }
    } else {
      const key = `${hi}:${lo}:${reason}`;
      this.unpackedCounts.set(key, (this.unpackedCounts.get(key) ?? 0) + 1);
    }
    this.drops++;
  }

  /** The counts since the last take; null when there were none. */
  take(): SummaryRow[] | null {
    this.endRun();
    if (this.drops === 0) return null;
    const rows: SummaryRow[] = [];
    for (const [hi, inner] of this.packedCounts) {
      for (const [key, count] of inner) {
        const reason = Math.floor(key / TWO32);
        rows.push([hi, key - reason * TWO32, reason, count]);
      }
    }
    for (const [key, count] of this.unpackedCounts) {
      const [hi, lo, reason] = key.split(':').map(Number) as [number, number, number];
      rows.push([hi, lo, reason, count]);
    }
    this.packedCounts = new Map();
    this.unpackedCounts = new Map();
    this.drops = 0;
    return rows;
  }

  private endRun(): void {
    if (this.runCount === 0) return;
    let inner = this.packedCounts.get(this.runHi);
    if (!inner) this.packedCounts.set(this.runHi, (inner = new Map<number, number>()));
    inner.set(this.runKey, (inner.get(this.runKey) ?? 0) + this.runCount);
    this.runCount = 0;
  }
}

/** Sampled call chains per (location, reason, callers), at most MAX_CHAINS of them with their frames. */
export class ChainCounts {
  private rows = new Map<string, ChainRow>();

  add(hi: number, lo: number, reason: number, callers: BigUint64Array): void {
    const key = `${hi}:${lo}:${reason}:${callers.join(',')}`;
    const row = this.rows.get(key);
    if (row) row[3]++;
    else if (this.rows.size < MAX_CHAINS) this.rows.set(key, [hi, lo, reason, 1, callers]);
    else {
      const over = `${hi}:${lo}:${reason}:`;
      const unkept = this.rows.get(over);
      if (unkept) unkept[3]++;
      else this.rows.set(over, [hi, lo, reason, 1, NO_CALLERS]);
    }
  }

  /** The chains since the last take; null when there were none. */
  take(): ChainRow[] | null {
    if (this.rows.size === 0) return null;
    const rows = [...this.rows.values()];
    this.rows = new Map();
    return rows;
  }
}

/** Call chains kept per second of drop time (the trace clock's seconds), at most `budget` in each. */
export class ChainBudget {
  private second = -1n;
  private kept = 0;

  constructor(readonly budget: number) {}

  /** Whether the chain of a drop at `ns` (trace clock) may be kept; counts it if so. */
  allow(ns: bigint): boolean {
    const second = ns / 1_000_000_000n;
    // A record from a second already past (another CPU's, read late) counts against the current one: never over.
    if (second > this.second) {
      this.second = second;
      this.kept = 0;
    }
    if (this.kept >= this.budget) return false;
    this.kept++;
    return true;
  }

  /** Chains kept in `second` (of the trace clock); 0 for a second the budget has not reached yet. */
  keptIn(second: number): number {
    return BigInt(second) === this.second ? this.kept : 0;
  }
}

/**
 * Chain rows trimmed so that no (location, reason) has more samples than drops counted in the same take: chains come
 * from a second instance, read a moment after the counts, and a sample must always stand for a counted drop.
 */
export function chainsWithinCounts(rows: readonly SummaryRow[] | null, chains: ChainRow[] | null): ChainRow[] | null {
  if (chains === null) return null;
  const left = new Map<string, number>();
  for (const [hi, lo, reason, count] of rows ?? []) left.set(`${hi}:${lo}:${reason}`, count);
  const out: ChainRow[] = [];
  for (const row of chains) {
    const key = `${row[0]}:${row[1]}:${row[2]}`;
    const room = left.get(key) ?? 0;
    if (room <= 0) continue;
    const count = Math.min(room, row[3]);
    left.set(key, room - count);
    out.push(count === row[3] ? row : [row[0], row[1], row[2], count, row[4]]);
  }
  return out.length > 0 ? out : null;
}
