// Pure timing rules of the tracefs reader loop: how long to wait after a pass over the CPUs, when a drain is done, and
// when the chain instance takes call chains.

/** A pass read nothing on any CPU. */
export const PASS_NONE = 0;
/** A pass read something and every CPU was empty or caught up by its end. */
export const PASS_SOME = 1;
/** A CPU still had full pages when its page budget ran out: read again without waiting. */
export const PASS_MORE = 2;
export type PassResult = typeof PASS_NONE | typeof PASS_SOME | typeof PASS_MORE;

/** Pages one pass reads from a CPU before moving on, so one flooded CPU cannot starve the others or the flush. */
export const PAGES_PER_PASS = 256;

/**
 * Packet batches posted but not yet handled by the main thread at which the reader stops reading: a main thread that
 * cannot keep up leaves the records in the kernel's ring buffer, whose overruns are counted exactly, instead of a
 * message queue that grows without bound.
 */
export const MAX_UNTAKEN_BATCHES = 2;

/**
 * Packet-mode records that go out at once, without waiting for the next flush: with MAX_UNTAKEN_BATCHES it bounds
 * what the main thread holds of a flood, however far it is behind.
 */
export const PACKETS_PER_BATCH = 8192;

export interface Backoff {
  /** Milliseconds to wait after a pass with this result; 0: read again at once. */
  after(pass: PassResult): number;
}

/**
 * Back off while idle (each empty read is a syscall and an EAGAIN exception), doubling from pollMs up to maxPollMs,
 * and snap back when data flows; after a pass that found data, still wait pollMs, so the next pass reads full pages
 * rather than chasing the writer.
 */
export function createBackoff(pollMs: number, maxPollMs: number): Backoff {
  const maxWait = Math.max(pollMs, maxPollMs);
  let wait = pollMs;
  return {
    after(pass: PassResult): number {
      if (pass === PASS_MORE) return 0;
      wait = pass === PASS_SOME ? pollMs : Math.min(maxWait, wait * 2);
      return wait;
    },
  };
}

/** Empty passes in a row that end a drain. */
export const DRAIN_EMPTY_PASSES = 2;
/** Passes after which a drain ends even if the CPUs never went empty (a writer the disabled event did not stop). */
export const DRAIN_MAX_PASSES = 100_000;

export interface Drain {
  /** After a drain pass: null when the drain is complete, else milliseconds to wait before the next (0: at once). */
  after(pass: PassResult): number | null;
}

/**
 * The event is off, but a probe already running on another CPU may still commit: a drain reads until
 * DRAIN_EMPTY_PASSES passes in a row find nothing, waiting briefly after each empty one so such a probe can finish.
 */
export function createDrain(pollMs: number): Drain {
  const pause = Math.min(pollMs, 5);
  let passes = 0;
  let empty = 0;
  return {
    after(pass: PassResult): number | null {
      passes++;
      empty = pass === PASS_NONE ? empty + 1 : 0;
      if (empty >= DRAIN_EMPTY_PASSES || passes >= DRAIN_MAX_PASSES) return null;
      return empty > 0 ? pause : 0;
    },
  };
}

/** The shortest time the chain gate opens for: below it the reader thread's own timing would decide the count. */
export const MIN_CHAIN_WINDOW_MS = 2;
/** While the gate is open the reader looks at least this often, so a sudden flood is cut off soon after the budget. */
export const OPEN_GATE_POLL_MS = 25;
/** How far the gate stretches its window past what the rate says, when drops come in bursts the rate averages away. */
export const MAX_WINDOW_STRETCH = 16;

export interface GateState {
  /** Whether the chain instance should take chains now. */
  open: boolean;
  /** Milliseconds until the answer may change by the clock alone. */
  inMs: number;
}

/**
 * When the chain instance takes chains. In each second of the monotonic clock (the trace clock's seconds) the gate
 * opens when the reader first looks, for as long as last second's drop rate needs to give `budget` chains, and it
 * closes early once `budget` chains were kept: the kernel unwinds about `budget` stacks a second at any rate, for two
 * filter writes. A window that ended short of the budget (drops in bursts) stretches the next one; one that reached
 * it shrinks the stretch again.
 */
export class ChainGate {
  private second = Number.NEGATIVE_INFINITY;
  private dropsAtStart = 0;
  private closeAtMs = 0;
  private stretch = 1;
  /** Chains kept in the current second, as last seen; and whether its window was cut by the rate. */
  private kept = 0;
  private timed = false;

  constructor(private readonly budget: number) {}

  /** At `nowMs`, with `drops` counted so far (cumulative) and `kept` chains kept in this second. */
  at(nowMs: number, drops: number, kept: number): GateState {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.second) this.plan(second, nowMs, drops);
    this.kept = kept;
    const open = kept < this.budget && nowMs < this.closeAtMs;
    return { open, inMs: open ? this.closeAtMs - nowMs : (second + 1) * 1000 - nowMs };
  }

  /** A new second: its window, from last second's rate and how the last window did. */
  private plan(second: number, nowMs: number, drops: number): void {
    if (this.timed && this.kept < this.budget)
      this.stretch = Math.min(MAX_WINDOW_STRETCH, (this.stretch * this.budget) / Math.max(this.kept, 1));
    else if (this.kept >= this.budget) this.stretch = Math.max(1, this.stretch / 2);
    const elapsed = second - this.second;
    const rate = Number.isFinite(elapsed) ? (drops - this.dropsAtStart) / elapsed : 0;
    this.second = second;
    this.dropsAtStart = drops;
    this.timed = rate > this.budget;
    const windowMs = this.timed ? Math.max(MIN_CHAIN_WINDOW_MS, (1000 * this.budget * this.stretch) / rate) : 1000;
    // From when it opens: a reader that looks late (a busy machine) still gets the whole window, within the second.
    this.closeAtMs = Math.min((second + 1) * 1000, nowMs + windowMs);
  }
}
