// Call chains on the bpf source (pure): the chain records the addon hands over (summary samples and packet notes),
// as count-0 summary entries or a packet's stack, and the per-second budget user space gives the program.
import type { SummaryEntry } from '../backend/types.js';
import { callersOf } from '../tracefs/format.js';
import { reasonName } from './decode.js';

/** One sampled chain (ChainRecord in native/bpf.cc) with its frames, innermost first, tracing frames included. */
export interface ChainRecord {
  location: bigint;
  /** Packet mode: the time (CLOCK_MONOTONIC ns) of the packet record it belongs to; 0n for a summary sample. */
  timeNs: bigint;
  /** Sampled drops that took it. */
  count: number;
  reason: number;
  /** Empty when the kernel could not unwind the stack (or its map was full). */
  frames: bigint[];
}

/** The fixed part of a chain record; `depth` frames of 8 bytes follow. */
export const CHAIN_HEADER_BYTES = 32;

export function decodeChains(bytes: Uint8Array): ChainRecord[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ChainRecord[] = [];
  for (let o = 0; o < bytes.length;) {
    if (o + CHAIN_HEADER_BYTES > bytes.length) throw new RangeError(`a chain header cut short at byte ${o}`);
    const depth = v.getUint32(o + 28, true);
    const end = o + CHAIN_HEADER_BYTES + depth * 8;
    if (end > bytes.length) throw new RangeError(`a chain of ${depth} frames cut short at byte ${o}`);
    const frames: bigint[] = [];
    for (let at = o + CHAIN_HEADER_BYTES; at < end; at += 8) frames.push(v.getBigUint64(at, true));
    out.push({
      location: v.getBigUint64(o, true),
      timeNs: v.getBigUint64(o + 8, true),
      count: Number(v.getBigUint64(o + 16, true)),
      reason: v.getUint32(o + 24, true),
      frames,
    });
    o = end;
  }
  return out;
}

/**
 * Summary samples as count-0 entries, as the tracefs source gives them: they add samples to their location's line
 * without adding drops. The chain is the callers behind the location (the tracing frames and kfree_skb left out).
 */
export function chainEntries(records: readonly ChainRecord[], reasons: ReadonlyMap<number, string>): SummaryEntry[] {
  return records
    .filter((r) => r.timeNs === 0n)
    .map((r) => {
      const callers = callersOf(r.frames, r.location);
      return {
        origin: 'software',
        pc: r.location,
        reason: reasonName(reasons, r.reason),
        count: 0,
        stacks: { sampled: r.count, chains: callers.length === 0 ? [] : [{ frames: [...callers], count: r.count }] },
      };
    });
}

/** Packet chains held at most while their packets are not read yet; past it the oldest go. */
export const MAX_PENDING_PACKET_CHAINS = 65536;

/**
 * The chains of sampled packets until their records are read. The program notes a chain before it submits the
 * record, so a record read finds its chain when the notes are taken after the records; notes for records still in
 * the ring wait here.
 */
export class PacketChains {
  private readonly pending = new Map<string, readonly bigint[]>();

  constructor(private readonly max = MAX_PENDING_PACKET_CHAINS) {}

  add(records: readonly ChainRecord[]): void {
    for (const r of records) {
      if (r.timeNs === 0n) continue;
      this.pending.set(`${r.timeNs}/${r.location}`, callersOf(r.frames, r.location));
      if (this.pending.size > this.max) this.pending.delete(this.pending.keys().next().value!);
    }
  }

  /** The chain of the packet record dropped at `timeNs` at `location`, once; undefined when it was not sampled. */
  take(timeNs: bigint, location: bigint): readonly bigint[] | undefined {
    const key = `${timeNs}/${location}`;
    const chain = this.pending.get(key);
    if (chain !== undefined) this.pending.delete(key);
    return chain;
  }

  get size(): number {
    return this.pending.size;
  }
}

/** What the program is told: one drop in `stride` per CPU is a candidate, at most `limit` chains until the next. */
export interface BudgetSetting {
  stride: number;
  limit: number;
}

/**
 * The program's chain budget, renewed each second of the monotonic clock: at most `budget` chains a second, and a
 * stride from last second's rate, so that a steady flood is sampled across the whole second rather than in its first
 * moments. A rate that rises meets the limit early; one that falls takes fewer chains for a second.
 */
export class StackBudget {
  private second = Number.NEGATIVE_INFINITY;
  private dropsAtStart = 0;

  constructor(private readonly budget: number) {
    if (!Number.isInteger(budget) || budget < 1) throw new RangeError(`the chain budget must be a positive integer`);
  }

  /** At `nowMs`, with `drops` seen so far (cumulative): the new setting when a second began, else null. */
  at(nowMs: number, drops: number): BudgetSetting | null {
    const second = Math.floor(nowMs / 1000);
    if (second === this.second) return null;
    const elapsed = second - this.second;
    const rate = Number.isFinite(elapsed) ? (drops - this.dropsAtStart) / elapsed : 0;
    this.second = second;
    this.dropsAtStart = drops;
    return { stride: Math.max(1, Math.floor(rate / this.budget)), limit: this.budget };
  }
}
