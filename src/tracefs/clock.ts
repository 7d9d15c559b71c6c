// Wall-clock conversion for ring-buffer timestamps. Our instance uses trace_clock 'mono' (CLOCK_MONOTONIC, the
// kernel's ktime_get_mono_fast_ns), the same clock process.hrtime.bigint() reads; wall time = mono + (realtime - mono),
// with the offset measured at the instant Date.now() ticks over, so its error is about a microsecond, not a millisecond.

export interface Clock {
  /** CLOCK_MONOTONIC in ns (must match the instance's trace_clock). */
  monotonicNs(): bigint;
  /** Wall clock in ns since the epoch (may be coarse: offset calibration copes with millisecond ticks). */
  realtimeNs(): bigint;
}

export const systemClock: Clock = {
  monotonicNs: () => process.hrtime.bigint(),
  realtimeNs: () => BigInt(Date.now()) * 1_000_000n,
};

/**
 * realtime - monotonic, in ns. Spins (at most `spinLimit` reads, about 1–2 ms with the system clock) until the
 * realtime reading changes, so the offset is taken at a tick edge; falls back to a plain reading otherwise.
 */
export function wallClockOffset(clock: Clock, spinLimit = 200_000): bigint {
  const first = clock.realtimeNs();
  for (let i = 0; i < spinLimit; i++) {
    const mono = clock.monotonicNs();
    const now = clock.realtimeNs();
    if (now !== first) return now - mono;
  }
  return clock.realtimeNs() - clock.monotonicNs();
}
