// Pure core of the tracefs reader: fed ring-buffer pages and per-CPU stats, it keeps the summary counts, the packet
// batch and the per-CPU loss ledger, and hands them out as reader-protocol messages. Call chains come from pages of a
// second instance (feedChains) whose drops are samples only. No fs, threads or timers.
import { DropwatchError } from '../errors/index.js';
import { callersOf, readKernelStack, type CpuStats, type KernelStackLayout, type KfreeSkbLayout } from './format.js';
import { decodePage, type PageLayouts, type RecordVisitor } from './page.js';
import { ChainBudget, ChainCounts, chainsWithinCounts, SummaryCounts } from './reader-counts.js';
import { LossLedger } from './reader-loss.js';
import { PendingPackets } from './reader-packets.js';
import {
  MODE_SUMMARY,
  NO_VALUE,
  type ChainRow,
  type LostReport,
  type PacketBatch,
  type ReaderMessage,
  type SummaryRow,
} from './reader-protocol.js';

export type { LostReport, PacketBatch } from './reader-protocol.js';

/** The page decoded and was at least half full: the writer may be ahead, so read this CPU again. */
export const PAGE_FULL = 0;
/** The page decoded and was less than half full: this CPU has caught up with the writer. */
export const PAGE_CAUGHT_UP = 1;
/** The page did not decode; the records before the bad one were counted, the rest become `undecoded` loss. */
export const PAGE_BAD = 2;
export type PageOutcome = typeof PAGE_FULL | typeof PAGE_CAUGHT_UP | typeof PAGE_BAD;

/** Decode errors reported as messages; later ones are still counted (as undecoded loss) but not repeated. */
export const REPORTED_DECODE_ERRORS = 3;

export interface ReaderCoreOptions {
  /** CPU numbers; index i is the `cpuIndex` of feed() and the i-th entry of takeLost()'s stats. */
  cpus: readonly number[];
  layouts: PageLayouts;
  skb: KfreeSkbLayout;
  /** Bytes one read() can return (header plus data). */
  pageSize: number;
  /** Packet-mode records held between takes before further ones are counted as backlog loss. */
  maxPending: number;
  /** MODE_SUMMARY or MODE_PACKET. */
  mode: number;
  /** When call chains are on: the kernel_stack record layout. */
  stack?: KernelStackLayout | null;
  /** Call chains kept per second of drop time at most (default 1000). */
  chainBudget?: number;
}

export interface ReaderCore {
  /** A page-sized buffer the caller may read() into and pass (or a prefix of it) to feed() without a copy. */
  readonly page: Uint8Array;
  /** MODE_SUMMARY or MODE_PACKET; take what was gathered before changing it, or it goes out in the new shape. */
  mode: number;
  /** Decodes what one read() of `cpuIndex`'s trace_pipe_raw returned (at most one page). */
  feed(cpuIndex: number, bytes: Uint8Array): PageOutcome;
  /**
   * Decodes a page of the chain instance (the same drops, each sampled one followed by its kernel_stack record): adds
   * the chains within the budget, to the summary's chains or to the held packet of the same drop. Counts nothing.
   */
  feedChains(cpuIndex: number, bytes: Uint8Array): PageOutcome;
  /** Drops counted so far (cumulative): the rate the chain gate plans with. */
  readonly drops: number;
  /** Chains kept in this second of the trace clock. */
  chainsKeptIn(second: number): number;
  /** The error of the last PAGE_BAD, if it is one of the first REPORTED_DECODE_ERRORS; null otherwise. Clears it. */
  takeDecodeError(): string | null;
  /** Summary counts since the last take, per (location, reason); null when there were none. */
  takeSummary(): SummaryRow[] | null;
  /**
   * Sampled call chains since the last take, per (location, reason, chain); null when there were none. Take the
   * summary first: flush() trims the chains to the drops counted with them.
   */
  takeChains(): ChainRow[] | null;
  /** Packet-mode records held now, not yet taken. */
  readonly pendingPackets: number;
  /** Packet-mode records since the last take (fresh arrays, transferable); null when there were none. */
  takePackets(): PacketBatch | null;
  /**
   * Folds in each CPU's stats (null: unreadable) and returns the CPUs whose cumulative loss grew since the last
   * report. Call after the reads it should account for: records the kernel counts as read but that never became a
   * drop are `undecoded`.
   */
  takeLost(stats: readonly (CpuStats | null)[]): LostReport[];
  /** takeSummary, takePackets, takeLost, as the messages to post, in that order. */
  flush(stats: readonly (CpuStats | null)[]): ReaderMessage[];
}

export function createReaderCore(opts: ReaderCoreOptions): ReaderCore {
  return new TracefsReaderCore(opts);
}

/** In the chain instance, a CPU's last drop, so the kernel_stack record that follows it can be paired with it. */
interface LastDrop {
  valid: boolean;
  pid: number;
  /** Location, as 32-bit words: this is set for every drop, a chain follows only a few of them. */
  hi: number;
  lo: number;
  reason: number;
  ts: bigint;
}

/** How far apart in time the two instances may record the same drop (each probe reads the clock itself). */
const SAME_DROP_NS = 20_000n;

/** Where a kfree_skb record keeps its fields (offsets into the record; -1: the format lacks the field). */
class RecordFields {
  readonly typeOffset: number;
  readonly typeSize: number;
  readonly locationOffset: number;
  readonly location64: boolean;
  readonly reasonOffset: number;
  readonly reasonSize: number;
  readonly protocolOffset: number;
  readonly protocolSize: number;
  readonly pidOffset: number;

  constructor(skb: KfreeSkbLayout) {
    this.typeOffset = skb.commonType.offset;
    this.typeSize = skb.commonType.size;
    this.locationOffset = skb.location.offset;
    this.location64 = skb.location.size === 8;
    this.reasonOffset = skb.reason ? skb.reason.offset : -1;
    this.reasonSize = skb.reason ? skb.reason.size : 0;
    this.protocolOffset = skb.protocol ? skb.protocol.offset : -1;
    this.protocolSize = skb.protocol ? skb.protocol.size : 0;
    this.pidOffset = skb.commonPid && skb.commonPid.size === 4 ? skb.commonPid.offset : -1;
  }
}

class TracefsReaderCore implements ReaderCore {
  readonly page: Uint8Array;
  mode: number;
  private readonly view: DataView;
  private readonly littleEndian: boolean;
  private readonly layouts: PageLayouts;
  private readonly pageSize: number;
  private readonly halfPage: number;
  private readonly fields: RecordFields;
  private readonly eventId: number;
  private readonly minLength: number;
  private readonly stack: KernelStackLayout | null;
  private readonly stackId: number;
  private readonly summary = new SummaryCounts();
  private readonly chains = new ChainCounts();
  private readonly packets: PendingPackets;
  private readonly loss: LossLedger;
  private readonly cpuCount: number;
  private readonly lastDrop: LastDrop[];
  private readonly budget: ChainBudget;
  private dropCount = 0;
  /** The CPU index of the page being decoded. */
  private cpuIndex = 0;
  private decodeErrors = 0;
  private decodeError: string | null = null;

  constructor(opts: ReaderCoreOptions) {
    const { layouts, pageSize } = opts;
    if (!(pageSize >= layouts.page.dataOffset))
      throw new DropwatchError('E_BAD_INPUT', `page size ${pageSize} too small`);
    this.layouts = layouts;
    this.pageSize = pageSize;
    this.littleEndian = layouts.littleEndian ?? true;
    this.page = new Uint8Array(pageSize);
    this.view = new DataView(this.page.buffer);
    this.halfPage = layouts.page.dataSize / 2;
    this.fields = new RecordFields(opts.skb);
    this.eventId = opts.skb.eventId;
    this.minLength = opts.skb.minLength;
    this.stack = opts.stack ?? null;
    this.stackId = this.stack ? this.stack.eventId : -1;
    this.packets = new PendingPackets(opts.maxPending);
    this.loss = new LossLedger(opts.cpus);
    this.cpuCount = opts.cpus.length;
    this.lastDrop = opts.cpus.map(() => ({ valid: false, pid: 0, hi: 0, lo: 0, reason: 0, ts: 0n }));
    this.budget = new ChainBudget(opts.chainBudget ?? 1000);
    this.mode = opts.mode;
  }

  get pendingPackets(): number {
    return this.packets.count;
  }

  get drops(): number {
    return this.dropCount;
  }

  chainsKeptIn(second: number): number {
    return this.budget.keptIn(second);
  }

  feed(index: number, bytes: Uint8Array): PageOutcome {
    return this.decode(index, bytes, this.visitRecord, true);
  }

  feedChains(index: number, bytes: Uint8Array): PageOutcome {
    if (this.stack === null) throw new DropwatchError('E_STATE', 'no kernel_stack layout: chains are off');
    return this.decode(index, bytes, this.visitChainRecord, false);
  }

  /** Decodes one page with `visit`; a page of our own instance (`counted`) adds its missed-events count. */
  private decode(index: number, bytes: Uint8Array, visit: RecordVisitor, counted: boolean): PageOutcome {
    if (!Number.isInteger(index) || index < 0 || index >= this.cpuCount)
      throw new DropwatchError('E_BAD_INPUT', `no CPU at index ${index}`);
    let data = bytes;
    // The visitor reads through one DataView over `page`, so bytes from elsewhere are copied in.
    if (bytes.buffer !== this.page.buffer || bytes.byteOffset !== 0) {
      if (bytes.byteLength > this.pageSize)
        throw new DropwatchError('E_BAD_INPUT', `${bytes.byteLength} bytes is more than a ${this.pageSize}-byte page`);
      this.page.set(bytes);
      data = bytes.byteLength === this.pageSize ? this.page : this.page.subarray(0, bytes.byteLength);
    }
    this.cpuIndex = index;
    try {
      const info = decodePage(data, this.layouts, visit);
      if (counted && info.missedEvents && info.missedCount !== null) this.loss.addPageMissed(index, info.missedCount);
      return info.dataLength < this.halfPage ? PAGE_CAUGHT_UP : PAGE_FULL;
    } catch (err) {
      // One bad page must not end monitoring; the records before the bad one were already counted.
      this.decodeErrors++;
      this.decodeError = this.decodeErrors <= REPORTED_DECODE_ERRORS ? (err as Error).message : null;
      return PAGE_BAD;
    }
  }

  takeDecodeError(): string | null {
    const e = this.decodeError;
    this.decodeError = null;
    return e;
  }

  takeSummary(): SummaryRow[] | null {
    return this.summary.take();
  }

  takeChains(): ChainRow[] | null {
    return this.chains.take();
  }

  takePackets(): PacketBatch | null {
    return this.packets.take();
  }

  takeLost(stats: readonly (CpuStats | null)[]): LostReport[] {
    return this.loss.take(stats);
  }

  flush(stats: readonly (CpuStats | null)[]): ReaderMessage[] {
    const out: ReaderMessage[] = [];
    const rows = this.takeSummary();
    const chainRows = chainsWithinCounts(rows, this.takeChains());
    if (rows || chainRows) out.push({ type: 'summary', rows: rows ?? [], chains: chainRows });
    const packets = this.takePackets();
    if (packets) out.push(packets);
    out.push(...this.takeLost(stats));
    return out;
  }

  /** An unsigned field of 1, 2 or 4 bytes at `off` in the page. */
  private readUnsignedField(off: number, size: number): number {
    const { view, littleEndian } = this;
    return size === 4
      ? view.getUint32(off, littleEndian)
      : size === 2
        ? view.getUint16(off, littleEndian)
        : view.getUint8(off);
  }

  /** Each record of a page of our instance: a drop, or another event's (a kernel_stack record is no lost drop). */
  private readonly visitRecord: RecordVisitor = (off, len, tsBase, tsRel) => {
    if (len < this.minLength) return;
    const { fields, view, littleEndian } = this;
    const type = this.readUnsignedField(off + fields.typeOffset, fields.typeSize);
    if (type !== this.eventId) {
      if (type === this.stackId) this.loss.delivered[this.cpuIndex]!++;
      return;
    }
    this.loss.delivered[this.cpuIndex]!++;
    this.dropCount++;
    const reason =
      fields.reasonOffset >= 0 ? this.readUnsignedField(off + fields.reasonOffset, fields.reasonSize) : NO_VALUE;
    if (this.mode === MODE_SUMMARY) {
      const lo = view.getUint32(off + fields.locationOffset, littleEndian);
      const hi = fields.location64 ? view.getUint32(off + fields.locationOffset + 4, littleEndian) : 0;
      this.summary.add(hi, lo, reason);
      return;
    }
    this.queuePacket(off, reason, tsBase, tsRel);
  };

  private queuePacket(off: number, reason: number, tsBase: bigint, tsRel: number): void {
    if (!this.packets.makeRoom()) {
      this.loss.backlog[this.cpuIndex]!++;
      return;
    }
    const { fields, view, littleEndian } = this;
    this.packets.push(
      this.cpuIndex,
      tsBase + BigInt(tsRel),
      fields.location64
        ? view.getBigUint64(off + fields.locationOffset, littleEndian)
        : BigInt(view.getUint32(off + fields.locationOffset, littleEndian)),
      reason,
      fields.protocolOffset >= 0 ? this.readUnsignedField(off + fields.protocolOffset, fields.protocolSize) : NO_VALUE,
      fields.pidOffset >= 0 ? view.getInt32(off + fields.pidOffset, littleEndian) : -1,
    );
  }

  /** Each record of a page of the chain instance: a sampled drop, the kernel_stack record after it, or neither. */
  private readonly visitChainRecord: RecordVisitor = (off, len, tsBase, tsRel) => {
    if (len < this.minLength) return;
    const { fields, view, littleEndian } = this;
    const type = this.readUnsignedField(off + fields.typeOffset, fields.typeSize);
    const last = this.lastDrop[this.cpuIndex]!;
    if (type === this.stackId) this.visitStack(off, len);
    else if (type !== this.eventId) last.valid = false;
    else {
      last.valid = true;
      last.pid = fields.pidOffset >= 0 ? view.getInt32(off + fields.pidOffset, littleEndian) : 0;
      last.hi = fields.location64 ? view.getUint32(off + fields.locationOffset + 4, littleEndian) : 0;
      last.lo = view.getUint32(off + fields.locationOffset, littleEndian);
      last.reason =
        fields.reasonOffset >= 0 ? this.readUnsignedField(off + fields.reasonOffset, fields.reasonSize) : NO_VALUE;
      last.ts = tsBase + BigInt(tsRel);
    }
  };

  /** A kernel_stack record: the call chain of the drop right before it on this CPU, if it is from the same task. */
  private visitStack(off: number, len: number): void {
    const last = this.lastDrop[this.cpuIndex]!;
    if (!last.valid || this.stack === null) return;
    last.valid = false;
    const { fields, view, littleEndian } = this;
    if (fields.pidOffset >= 0 && view.getInt32(off + fields.pidOffset, littleEndian) !== last.pid) return;
    const frames = readKernelStack(view, off, len, this.stack, littleEndian);
    if (frames === null) return;
    const pc = (BigInt(last.hi) << 32n) | BigInt(last.lo);
    // In packet mode a chain belongs to its packet: one already taken (or not read yet) cannot carry it.
    const packet =
      this.mode === MODE_SUMMARY
        ? -1
        : this.packets.findDrop(this.cpuIndex, last.ts, pc, last.reason, last.pid, SAME_DROP_NS);
    if ((this.mode !== MODE_SUMMARY && packet < 0) || !this.budget.allow(last.ts)) return;
    const callers = BigUint64Array.from(callersOf(frames, pc));
    if (packet >= 0) this.packets.addStack(packet, callers);
    else this.chains.add(last.hi, last.lo, last.reason, callers);
  }
}
