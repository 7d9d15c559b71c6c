// The engine's seams: where lines go, how values become lines, who else sees each drop, and the clock.
import type { AlertMode, MonitorConfig, PacketDrop, Stats, SummaryEntry } from '../backend/types.js';
import type { FlushResult, Overflow } from '../aggregate/index.js';
import type { SummaryLine } from '../aggregate/group.js';
import type { Resolved } from '../symbols/kallsyms.js';
import type { WorkloadNames } from '../workload/types.js';

/** Where lines go. `data` carries drop reports; `message` dropwatch's chatter; `error` our one-line complaints. */
export interface SessionOutput {
  /** `reported`: the drops the text reports, so drops that never reach the reader can be counted. */
  data(line: string, reported?: Reported): void;
  message(line: string): void;
  error(line: string): void;
  /**
   * True while the reader of the drop reports is so far behind that more would only pile up in memory: the session then
   * counts drops instead of printing them, and reports them as lost (UNWRITTEN).
   */
  congested?(): boolean;
}

/**
 * The drops a piece of output reports: `drops` in all, and where one drop's text per entry ends when the piece holds
 * several (string index just past it), so a piece cut short can be told apart drop by drop.
 */
export interface Reported {
  drops: number;
  ends?: readonly number[];
}

/** Where drops that were counted but could not be printed, because the output fell behind, are reported lost. */
export const UNWRITTEN = 'dropwatch output';

/** Turns values into lines; the CLI picks text or JSON and the symbol lookup method. */
export interface Renderer {
  /** A summary line: one location's, or one grouped by `set by` (its `group`). */
  summary(line: SummaryLine): string;
  packet(packet: PacketDrop): string[];
  config(config: MonitorConfig): string[];
  stats(stats: Stats): string[];
  /** Locations that did not fit in the aggregator this interval. */
  overflow(overflow: Overflow): string;
  /** One loss report, printed as it comes. */
  lost(count: number, where: string): string;
  /** A place's total at stop, worded apart from lost() so the two are never summed together. */
  lostTotal(count: number, where: string): string;
}

/** Per-interval summing, bounded; the session owns the timer. */
export interface Aggregator {
  add(entries: readonly SummaryEntry[]): void;
  flush(): FlushResult;
}

/** Sees every drop that passed the filter and every loss, whatever gets printed: metrics, JSON loss objects. */
export interface DropObserver {
  drops?(entries: readonly SummaryEntry[]): void;
  packet?(packet: PacketDrop): void;
  lost?(count: number, where: string): void;
  overflow?(overflow: Overflow): void;
  /** Every interval's aggregated lines, the very ones the output renders; empty intervals too, so it can keep time. */
  interval?(result: FlushResult): void;
}

/** A full-screen view while it owns the terminal: the session's lines go to it, and it observes every drop. */
export interface SessionView {
  output: SessionOutput;
  observer: DropObserver;
}

export interface Clock {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** The user-space part of a filter: which drops pass. */
export interface DropPredicate {
  /** The part of a summary entry that passes: itself, a copy with only its matching places, or null for none. */
  summary(entry: SummaryEntry): SummaryEntry | null;
  packet(packet: PacketDrop): boolean;
}

/** The run's names for network namespaces, made only once something needs them (a lazily loaded resolver). */
export interface WorkloadSource {
  /** The names, made on the first call. */
  need(): Promise<WorkloadNames>;
  /** The names if made, else null: the event path never waits for them. */
  current(): WorkloadNames | null;
}

export interface FilterCompiler {
  /** Compiles an expression (throws DropwatchError E_BAD_INPUT) and applies it; null clears it. Returns what to say. */
  apply(expression: string | null): Promise<string>;
  /** One line when the filter in force can never match (or lets every drop through) as things are; else null. */
  check?(): Promise<string | null>;
  /** One line refusing a switch to `mode` when the filter in force reads a field that mode cannot know; else null. */
  refuseMode?(mode: AlertMode): Promise<string | null>;
  /** One line refusing to start when the filter in force reads a field the current mode cannot know; else null. */
  refuseStart?(): Promise<string | null>;
}

/** What the filter needs of the run's symbol lookup. */
export interface SymbolNames {
  /** Resolves an address, or null (unresolvable, `-l none`, or the table is not loaded yet). */
  lookup(pc: bigint): Resolved | null;
  /** Once loaded: why no address can be named, else null. */
  missing(): string | null;
}
