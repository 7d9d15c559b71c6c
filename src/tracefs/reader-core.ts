// Pure core of the tracefs reader: fed ring-buffer pages and per-CPU stats, it keeps the summary counts, the packet
// batch and the per-CPU loss ledger, and hands them out as reader-protocol messages. No fs, threads or timers.
import { DropwatchError } from '../errors/index.js';
import {
  callersOf,
  lostFromStats,
  readKernelStack,
  type CpuStats,
  type KernelStackLayout,
  type KfreeSkbLayout,
} from './format.js';
import { decodePage, type PageLayouts } from './page.js';
import { MODE_SUMMARY, NO_VALUE, type ChainRow, type ReaderMessage, type SummaryRow } from './reader-protocol.js';

export type PacketBatch = Extract<ReaderMessage, { type: 'packets' }>;
export type LostReport = Extract<ReaderMessage, { type: 'lost' }>;

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
  /** When the stacktrace trigger is on: the kernel_stack record layout. */
  stack?: KernelStackLayout | null;
}

export interface ReaderCore {
  /** A page-sized buffer the caller may read() into and pass (or a prefix of it) to feed() without a copy. */
  readonly page: Uint8Array;
  /** MODE_SUMMARY or MODE_PACKET; take what was gathered before changing it, or it goes out in the new shape. */
  mode: number;
  /** Decodes what one read() of `cpuIndex`'s trace_pipe_raw returned (at most one page). */
  feed(cpuIndex: number, bytes: Uint8Array): PageOutcome;
  /** The error of the last PAGE_BAD, if it is one of the first REPORTED_DECODE_ERRORS; null otherwise. Clears it. */
  takeDecodeError(): string | null;
  /** Summary counts since the last take, per (location, reason); null when there were none. */
  takeSummary(): SummaryRow[] | null;
  /** Sampled call chains since the last take, per (location, reason, chain); null when there were none. */
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

/** Starting size of the packet batch; it grows fourfold up to maxPending. */
const INITIAL_PENDING = 4096;
const TWO32 = 4294967296;
/** Reasons below this pack with the location's low word into one exact double key; beyond it (never seen), strings. */
const PACKED_REASONS = 0x100000;
/** Distinct (location, reason, chain) kept between takes; samples of further chains count without their frames. */
export const MAX_CHAINS = 4096;

export function createReaderCore(opts: ReaderCoreOptions): ReaderCore {
  const { skb, layouts, pageSize, maxPending } = opts;
  if (!(pageSize >= layouts.page.dataOffset))
    throw new DropwatchError('E_BAD_INPUT', `page size ${pageSize} too small`);
  const ncpu = opts.cpus.length;
  const le = layouts.littleEndian ?? true;
  const page = new Uint8Array(pageSize);
  const view = new DataView(page.buffer);
  const ctOff = skb.commonType.offset;
  const ctSize = skb.commonType.size;
  const locOff = skb.location.offset;
  const loc64 = skb.location.size === 8;
  const reasonOff = skb.reason ? skb.reason.offset : -1;
  const reasonSize = skb.reason ? skb.reason.size : 0;
  const protoOff = skb.protocol ? skb.protocol.offset : -1;
  const protoSize = skb.protocol ? skb.protocol.size : 0;
  const eventId = skb.eventId;
  const minLength = skb.minLength;
  const pidOff = skb.commonPid && skb.commonPid.size === 4 ? skb.commonPid.offset : -1;
  const stack = opts.stack ?? null;
  const stackId = stack ? stack.eventId : -1;
  const halfPage = layouts.page.dataSize / 2;

  const small = (off: number, size: number): number =>
    size === 4 ? view.getUint32(off, le) : size === 2 ? view.getUint16(off, le) : view.getUint8(off);

  // Summary: hi → (lo + reason * 2^32) → count. Reasons beyond 2^20 (never seen) go to a string-keyed map.
  let agg = new Map<number, Map<number, number>>();
  let aggOdd = new Map<string, number>();
  let aggCount = 0;

  let cap = Math.min(maxPending, INITIAL_PENDING);
  let ts = new BigUint64Array(cap);
  let loc = new BigUint64Array(cap);
  let rp = new Uint32Array(cap * 2);
  let pids = new Int32Array(cap);
  let pending = 0;
  let packetStacks: [number, BigUint64Array][] = [];

  // With stacks on, each CPU's last drop, so the kernel_stack record that follows it can be paired with it.
  const lastDrop = Array.from({ length: opts.cpus.length }, () => ({
    valid: false,
    pid: 0,
    hi: 0,
    lo: 0,
    reason: 0,
    packet: -1,
  }));
  let chains = new Map<string, ChainRow>();
  const EMPTY = new BigUint64Array(0);

  const zeros = (): number[] => Array.from({ length: ncpu }, () => 0);
  const ring = zeros();
  const pageMissed = zeros();
  const backlog = zeros();
  /** Records that became drops (aggregated or queued), per CPU: the kernel's `read events` less these were lost here. */
  const delivered = zeros();
  const undecoded = zeros();
  const reported = Array.from({ length: ncpu }, () => ({ ring: 0, backlog: 0, undecoded: 0 }));
  let mode = opts.mode;
  let cpuIndex = 0;
  let decodeErrors = 0;
  let decodeError: string | null = null;

  let runHi = -1;
  let runKey = -1;
  let runCount = 0;
  function endRun(): void {
    if (runCount === 0) return;
    let inner = agg.get(runHi);
    if (!inner) agg.set(runHi, (inner = new Map<number, number>()));
    inner.set(runKey, (inner.get(runKey) ?? 0) + runCount);
    runCount = 0;
  }

  /** A kernel_stack record: the call chain of the drop right before it on this CPU, if it is from the same task. */
  function visitStack(off: number, len: number): void {
    delivered[cpuIndex]!++;
    const last = lastDrop[cpuIndex]!;
    if (!last.valid || stack === null) return;
    last.valid = false;
    if (pidOff >= 0 && view.getInt32(off + pidOff, le) !== last.pid) return;
    const frames = readKernelStack(view, off, len, stack, le);
    if (frames === null) return;
    const pc = (BigInt(last.hi) << 32n) | BigInt(last.lo);
    const callers = BigUint64Array.from(callersOf(frames, pc));
    if (mode !== MODE_SUMMARY) {
      if (last.packet >= 0) packetStacks.push([last.packet, callers]);
      return;
    }
    const key = `${last.hi}:${last.lo}:${last.reason}:${callers.join(',')}`;
    const row = chains.get(key);
    if (row) row[3]++;
    else if (chains.size < MAX_CHAINS) chains.set(key, [last.hi, last.lo, last.reason, 1, callers]);
    else {
      const over = `${last.hi}:${last.lo}:${last.reason}:`;
      const unkept = chains.get(over);
      if (unkept) unkept[3]++;
      else chains.set(over, [last.hi, last.lo, last.reason, 1, EMPTY]);
    }
  }

  const visit = (off: number, len: number, tsBase: bigint, tsRel: number): void => {
    if (len < minLength) return;
    const type = small(off + ctOff, ctSize);
    if (type !== eventId) {
      if (type === stackId) visitStack(off, len);
      else if (stack) lastDrop[cpuIndex]!.valid = false;
      return;
    }
    delivered[cpuIndex]!++;
    const reason = reasonOff >= 0 ? small(off + reasonOff, reasonSize) : NO_VALUE;
    if (stack) {
      const last = lastDrop[cpuIndex]!;
      last.valid = true;
      last.pid = pidOff >= 0 ? view.getInt32(off + pidOff, le) : 0;
      // Words, not a bigint: this runs for every drop, a chain follows only a few of them.
      last.hi = loc64 ? view.getUint32(off + locOff + 4, le) : 0;
      last.lo = view.getUint32(off + locOff, le);
      last.reason = reason;
      last.packet = mode === MODE_SUMMARY ? -1 : pending;
    }
    if (mode === MODE_SUMMARY) {
      const lo = view.getUint32(off + locOff, le);
      const hi = loc64 ? view.getUint32(off + locOff + 4, le) : 0;
      if (reason < PACKED_REASONS) {
        const key = lo + reason * TWO32;
        // A storm is mostly one location: count runs and touch the maps only when the key changes.
        if (key === runKey && hi === runHi) runCount++;
        else {
          endRun();
          runHi = hi;
          runKey = key;
          runCount = 1;
        }
      } else {
        const key = `${hi}:${lo}:${reason}`;
        aggOdd.set(key, (aggOdd.get(key) ?? 0) + 1);
      }
      aggCount++;
      return;
    }
    if (pending >= cap) {
      if (cap >= maxPending) {
        backlog[cpuIndex]!++;
        if (stack) lastDrop[cpuIndex]!.packet = -1;
        return;
      }
      cap = Math.min(maxPending, cap * 4);
      const nts = new BigUint64Array(cap);
      nts.set(ts);
      ts = nts;
      const nloc = new BigUint64Array(cap);
      nloc.set(loc);
      loc = nloc;
      const nrp = new Uint32Array(cap * 2);
      nrp.set(rp);
      rp = nrp;
      const npid = new Int32Array(cap);
      npid.set(pids);
      pids = npid;
    }
    ts[pending] = tsBase + BigInt(tsRel);
    loc[pending] = loc64 ? view.getBigUint64(off + locOff, le) : BigInt(view.getUint32(off + locOff, le));
    rp[pending * 2] = reason;
    rp[pending * 2 + 1] = protoOff >= 0 ? small(off + protoOff, protoSize) : NO_VALUE;
    pids[pending] = pidOff >= 0 ? view.getInt32(off + pidOff, le) : -1;
    pending++;
  };

  const feed = (index: number, bytes: Uint8Array): PageOutcome => {
    if (!Number.isInteger(index) || index < 0 || index >= ncpu)
      throw new DropwatchError('E_BAD_INPUT', `no CPU at index ${index}`);
    let data = bytes;
    // The visitor reads through one DataView over `page`, so bytes from elsewhere are copied in.
    if (bytes.buffer !== page.buffer || bytes.byteOffset !== 0) {
      if (bytes.byteLength > pageSize)
        throw new DropwatchError('E_BAD_INPUT', `${bytes.byteLength} bytes is more than a ${pageSize}-byte page`);
      page.set(bytes);
      data = bytes.byteLength === pageSize ? page : page.subarray(0, bytes.byteLength);
    }
    cpuIndex = index;
    try {
      const info = decodePage(data, layouts, visit);
      if (info.missedEvents && info.missedCount !== null) pageMissed[index]! += info.missedCount;
      return info.dataLength < halfPage ? PAGE_CAUGHT_UP : PAGE_FULL;
    } catch (err) {
      // One bad page must not end monitoring; the records before the bad one were already counted.
      decodeErrors++;
      decodeError = decodeErrors <= REPORTED_DECODE_ERRORS ? (err as Error).message : null;
      return PAGE_BAD;
    }
  };

  const takeDecodeError = (): string | null => {
    const e = decodeError;
    decodeError = null;
    return e;
  };

  const takeSummary = (): SummaryRow[] | null => {
    endRun();
    if (aggCount === 0) return null;
    const rows: SummaryRow[] = [];
    for (const [hi, inner] of agg) {
      for (const [key, count] of inner) {
        const reason = Math.floor(key / TWO32);
        rows.push([hi, key - reason * TWO32, reason, count]);
      }
    }
    for (const [key, count] of aggOdd) {
      const [hi, lo, reason] = key.split(':').map(Number) as [number, number, number];
      rows.push([hi, lo, reason, count]);
    }
    agg = new Map();
    aggOdd = new Map();
    aggCount = 0;
    return rows;
  };

  const takeChains = (): ChainRow[] | null => {
    if (chains.size === 0) return null;
    const rows = [...chains.values()];
    chains = new Map();
    return rows;
  };

  const takePackets = (): PacketBatch | null => {
    if (pending === 0) return null;
    const batch: PacketBatch = {
      type: 'packets',
      count: pending,
      ts: ts.slice(0, pending),
      loc: loc.slice(0, pending),
      rp: rp.slice(0, pending * 2),
      pid: pids.slice(0, pending),
      stacks: packetStacks.length > 0 ? packetStacks : null,
    };
    pending = 0;
    packetStacks = [];
    // A stack still to come for the last drop would point into the batch just taken.
    for (const last of lastDrop) last.packet = -1;
    return batch;
  };

  const takeLost = (stats: readonly (CpuStats | null)[]): LostReport[] => {
    if (stats.length !== ncpu)
      throw new DropwatchError('E_BAD_INPUT', `stats for ${stats.length} CPUs, reading ${ncpu}`);
    const out: LostReport[] = [];
    for (let i = 0; i < ncpu; i++) {
      const s = stats[i] ?? null;
      // Page-header counts are derived from the same overrun counter, so the larger of the two is exact, not a sum.
      ring[i] = Math.max(ring[i]!, s ? lostFromStats(s) : 0, pageMissed[i]!);
      // The kernel counts every record our reads took (`read events`, whole and partial pages alike), and only this
      // reader reads: what it handed us and never became a drop (the rest of a page that failed to decode, a record
      // of the wrong shape) is the difference, exactly.
      if (s) undecoded[i] = Math.max(undecoded[i]!, s.readEvents - delivered[i]!);
      const r = reported[i]!;
      if (ring[i]! > r.ring || backlog[i]! > r.backlog || undecoded[i]! > r.undecoded) {
        r.ring = ring[i]!;
        r.backlog = backlog[i]!;
        r.undecoded = undecoded[i]!;
        out.push({ type: 'lost', cpu: opts.cpus[i]!, ring: r.ring, backlog: r.backlog, undecoded: r.undecoded });
      }
    }
    return out;
  };

  const flush = (stats: readonly (CpuStats | null)[]): ReaderMessage[] => {
    const out: ReaderMessage[] = [];
    const rows = takeSummary();
    const chainRows = takeChains();
    if (rows || chainRows) out.push({ type: 'summary', rows: rows ?? [], chains: chainRows });
    const packets = takePackets();
    if (packets) out.push(packets);
    out.push(...takeLost(stats));
    return out;
  };

  return {
    page,
    get mode() {
      return mode;
    },
    set mode(m: number) {
      mode = m;
    },
    get pendingPackets() {
      return pending;
    },
    feed,
    takeDecodeError,
    takeSummary,
    takeChains,
    takePackets,
    takeLost,
    flush,
  };
}
