// Messages and shared control words between the backend and its reader worker (kept apart so importing them never
// starts a reader).
import type { PageLayouts } from './page.js';
import type { KernelStackLayout, KfreeSkbLayout } from './format.js';

export const CTL_CMD = 0;
export const CTL_MODE = 1;
export const CTL_WAKE = 2;
/** Packet batches the worker has posted that the main thread has not finished handling. */
export const CTL_UNTAKEN = 3;
export const CMD_RUN = 0;
/** The event is disabled: read until every CPU is empty, post everything, then exit. */
export const CMD_DRAIN = 1;
export const CMD_ABORT = 2;
export const MODE_SUMMARY = 0;
export const MODE_PACKET = 1;
export const NO_VALUE = 0xffffffff;

export interface ReaderInit {
  cpus: number[];
  fds: number[];
  statsPaths: string[];
  pageSize: number;
  layouts: PageLayouts;
  skb: KfreeSkbLayout;
  ctl: SharedArrayBuffer;
  flushMs: number;
  /** Wait after an empty read while drops flow... */
  pollMs: number;
  /** ...doubling while idle up to this. */
  maxPollMs: number;
  /** Packet-mode records held between flushes before further ones are counted as lost. */
  maxPending: number;
  /** Set when call chains are on: the kernel_stack record layout. */
  stack: KernelStackLayout | null;
  /** Set when call chains are on: the chain instance the reader opens and closes, and reads. */
  chains: ChainInit | null;
}

/**
 * The chain instance: the same event with `options/stacktrace` on, so each drop it records is followed by its
 * kernel_stack record. Its event filter is the gate: ours while open, one no drop passes while closed.
 */
export interface ChainInit {
  /** Per-CPU trace_pipe_raw descriptors, in the order of `cpus`. */
  fds: number[];
  /** The chain instance's kfree_skb `filter` file. */
  filterPath: string;
  /** The kernel filter while open (null: none). */
  filter: string | null;
  /** A filter no drop passes: the gate closed. */
  closedFilter: string;
  /** Chains kept per second at most. */
  budget: number;
}

/** From the main thread to the reader: the kernel filter changed, so the chain gate opens with this one. */
export interface ReaderCommand {
  type: 'filter';
  filter: string | null;
}

/** [locationHi, locationLo, reason (NO_VALUE when absent), count] */
export type SummaryRow = [number, number, number, number];

/**
 * [locationHi, locationLo, reason, count, callers]: `count` sampled drops at that location took this call chain
 * (innermost caller first). Empty callers: chains over the bound, counted as sampled but not kept.
 */
export type ChainRow = [number, number, number, number, BigUint64Array];

export type ReaderMessage =
  | { type: 'summary'; rows: SummaryRow[]; chains: ChainRow[] | null }
  | {
      type: 'packets';
      count: number;
      /** Ring-buffer clock ns. */
      ts: BigUint64Array;
      loc: BigUint64Array;
      /** Per record its reason then its protocol, flat (NO_VALUE when absent). */
      reasonProtocolPairs: Uint32Array;
      /** The task running at each drop (-1 when the format has no pid). */
      pid: Int32Array;
      /** [record index, callers] for the records that were sampled with a stack. */
      stacks: [number, BigUint64Array][] | null;
    }
  /**
   * Per-CPU cumulative losses: ring-buffer (stats / page headers), our own packet backlog, and records the kernel
   * handed us that we could not decode (its `read events` less the drops we made of them).
   */
  | { type: 'lost'; cpu: number; ring: number; backlog: number; undecoded: number }
  | { type: 'drained' }
  | { type: 'error'; fatal: boolean; message: string };

export type PacketBatch = Extract<ReaderMessage, { type: 'packets' }>;
export type LostReport = Extract<ReaderMessage, { type: 'lost' }>;
