// The reference for pcap record times from kernel nanoseconds, in plain BigInt arithmetic, for checking the writer's
// exact Number arithmetic and the record times of dwdump's captures.
import type { Timestamp } from '../../src/pcap/index.js';

/** Seconds + microseconds of a u64 nanosecond count, the nanoseconds cut off; null past classic pcap's u32 seconds. */
export function pcapTimeOfNs(ns: bigint): Timestamp | null {
  const sec = ns / 1_000_000_000n;
  if (ns < 0n || sec > 0xffff_ffffn) return null;
  return { sec: Number(sec), usec: Number((ns % 1_000_000_000n) / 1000n) };
}

/** A record time in nanoseconds (for ordering and differences). */
export const nsOfPcapTime = (ts: Timestamp): bigint => BigInt(ts.sec) * 1_000_000_000n + BigInt(ts.usec) * 1000n;
