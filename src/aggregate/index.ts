// Per-interval drop aggregation: merges summary batches (one per CPU per second from NET_DM) into one line per location, with a hard cap on distinct locations.

import type { CallChain, DropPlace, StackSamples, SummaryEntry } from '../backend/types.js';

export const DEFAULT_MAX_KEYS = 4096;
/** Distinct call chains kept per location and interval; samples of further chains still count in `sampled`. */
export const MAX_CHAINS_PER_LOCATION = 32;

/** Drops whose location did not fit under the cap this interval. */
export interface Overflow {
  drops: number;
  /** Distinct locations not shown; exact unless `distinctIsLowerBound`. */
  distinct: number;
  /** Counting distinct overflow locations is itself capped (at maxKeys), so past that this is a lower bound. */
  distinctIsLowerBound: boolean;
  /** The cap that was hit. */
  limit: number;
}

export interface FlushResult {
  /** One entry per (origin, pc, trap, reason), counts summed, in first-seen order. */
  lines: SummaryEntry[];
  overflow: Overflow | null;
}

export interface AggregatorOptions {
  /** Distinct locations kept per interval; later new ones only add to the overflow tally. */
  maxKeys?: number;
}

// NUL cannot occur in trap or reason names (netlink strings end at it); \u0001 marks "absent" so it differs from "".
function keyOf(e: SummaryEntry): string {
  return `${e.origin}\0${e.pc.toString(16)}\0${e.trap ?? '\u0001'}\0${e.reason ?? '\u0001'}`;
}

export class DropAggregator {
  readonly maxKeys: number;
  private index = new Map<string, SummaryEntry>();
  private overflowKeys = new Set<string>();
  private overflowDrops = 0;
  private overflowCapped = false;

  constructor(options: AggregatorOptions = {}) {
    const max = options.maxKeys ?? DEFAULT_MAX_KEYS;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxKeys must be a positive integer, got ${max}`);
    this.maxKeys = max;
  }

  /** Distinct locations held for the current interval. */
  get size(): number {
    return this.index.size;
  }

  add(entries: readonly SummaryEntry[]): void {
    for (const e of entries) {
      const key = keyOf(e);
      const line = this.index.get(key);
      if (line) {
        line.count += e.count;
        if (e.stacks) line.stacks = mergeStacks(line.stacks, e.stacks);
        if (e.places) line.places = mergePlaces(line.places, e.places);
      } else if (this.index.size < this.maxKeys) {
        // A copy: callers may reuse their entry objects.
        const copy: SummaryEntry = { origin: e.origin, pc: e.pc, reason: e.reason, count: e.count };
        if (e.trap !== undefined) copy.trap = e.trap;
        if (e.stacks) copy.stacks = mergeStacks(undefined, e.stacks);
        if (e.places) copy.places = mergePlaces(undefined, e.places);
        this.index.set(key, copy);
      } else {
        this.overflowDrops += e.count;
        if (this.overflowKeys.size < this.maxKeys) this.overflowKeys.add(key);
        else if (!this.overflowKeys.has(key)) this.overflowCapped = true;
      }
    }
  }

  /** Returns the interval's lines (Map iteration order is insertion order) and starts a new interval. */
  flush(): FlushResult {
    // An entry with samples only (its drops were counted in another interval) has nothing to print on its own.
    const lines = [...this.index.values()].filter((line) => line.count > 0);
    for (const line of lines) line.stacks?.chains.sort((a, b) => b.count - a.count);
    const overflow: Overflow | null =
      this.overflowKeys.size === 0
        ? null
        : {
            drops: this.overflowDrops,
            distinct: this.overflowKeys.size,
            distinctIsLowerBound: this.overflowCapped,
            limit: this.maxKeys,
          };
    this.index = new Map();
    this.overflowKeys = new Set();
    this.overflowDrops = 0;
    this.overflowCapped = false;
    return { lines, overflow };
  }
}

const chainKey = (frames: readonly bigint[]): string => frames.join(',');

/** Adds `more` into `into` (a fresh copy when undefined), keeping at most MAX_CHAINS_PER_LOCATION distinct chains. */
function mergeStacks(into: StackSamples | undefined, more: StackSamples): StackSamples {
  const target: StackSamples = into ?? { chains: [], sampled: 0 };
  target.sampled += more.sampled;
  for (const chain of more.chains) {
    const key = chainKey(chain.frames);
    const same = target.chains.find((c: CallChain) => chainKey(c.frames) === key);
    if (same) same.count += chain.count;
    else if (target.chains.length < MAX_CHAINS_PER_LOCATION)
      target.chains.push({ frames: chain.frames, count: chain.count });
  }
  return target;
}

// NUL cannot occur in a device or task name; \u0001 marks "absent" so it differs from "".
const placeKey = (p: DropPlace): string =>
  `${p.netns ?? ''}\0${p.ifindex ?? ''}\0${p.ifname ?? '\u0001'}\0${p.pid ?? ''}\0${p.comm ?? '\u0001'}\0${p.cgroup ?? ''}`;

/** Each line's places by key, so a line with many namespaces merges in constant time per place. */
const placeIndex = new WeakMap<DropPlace[], Map<string, DropPlace>>();

/** Adds `more` into `into` (a fresh copy when undefined): one place per namespace, device and task, counts summed. */
function mergePlaces(into: DropPlace[] | undefined, more: readonly DropPlace[]): DropPlace[] {
  const target = into ?? [];
  let index = placeIndex.get(target);
  if (index === undefined) placeIndex.set(target, (index = new Map(target.map((p) => [placeKey(p), p]))));
  for (const place of more) {
    const key = placeKey(place);
    const same = index.get(key);
    if (same) same.count += place.count;
    else {
      const copy = { ...place };
      target.push(copy);
      index.set(key, copy);
    }
  }
  return target;
}
