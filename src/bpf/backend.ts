// BpfBackend: the Backend contract over dropwatch's BPF program on tp_btf/kfree_skb. Summary mode counts in the
// kernel and drains the idle count table every interval; packet mode reads the ring buffer when the kernel wakes it
// (and on a slow timer), a bounded slice per turn of the event loop.
// Nothing is pinned: the program, maps and link are this process's descriptors, so even kill -9 leaves nothing.
import { BPF_OFFER } from './source.js';
import type {
  Backend,
  BackendCapabilities,
  BackendEvent,
  EventListener,
  KernelFilter,
  KernelSets,
  LostCount,
  MonitorConfig,
  PacketDrop,
  StartOptions,
  Stats,
} from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import { decodeFlow } from '../packet/index.js';
import { systemClock, wallClockOffset, type Clock } from '../tracefs/clock.js';
import { decodeCounts, decodePackets, reasonName, reasonTable, summaryEntries, type PacketRecord } from './decode.js';
import { bpfError, type BpfFailure } from './errors.js';
import { encodeFilter, MAX_FILTER_VALUES } from './filter.js';
import { loadBpfAddon, type BpfAddon, type NativeBpfProgram } from './native.js';

export interface BpfOptions {
  /** A BPF object file to load instead of the one built into the addon (tests: a corrupt or foreign object). */
  objectPath?: string;
  /** Kernel BTF to read instead of /sys/kernel/btf/vmlinux (tests: a missing or empty one). */
  btfPath?: string;
  /** How often summary counts are drained, ms (default 200). */
  drainIntervalMs?: number;
  /** How often the packet ring is read besides the kernel's wakeups, for the tail below wakeupBytes, ms (default 100). */
  pollIntervalMs?: number;
  /** Ring data past which the kernel wakes the reader at once, bytes (default 512 KiB). */
  wakeupBytes?: number;
  /** The packet ring's size, bytes: a power of two, at least a page (default 16 MiB, as the object says). */
  ringBytes?: number;
  clock?: Clock;
  onWarning?: (message: string) => void;
  /** For tests: the addon to use instead of the built one. */
  addon?: BpfAddon;
}

const MODE_SUMMARY = 0;
const MODE_PACKET = 1;
/** What the program copies of each packet at most (DW_MAX_CAPTURE in bpf/dropwatch.h). */
export const MAX_CAPTURE = 256;
/**
 * Bytes of packet records taken per turn of the event loop: a flood is decoded, formatted and written a slice at a
 * time, so memory holds one slice rather than the ring, and a reader slower than the flood leaves the rest in the
 * ring, whose reserve failures the program counts exactly.
 */
export const SLICE_BYTES = 1024 * 1024;

/** The program's loss counters (lost() in native/bpf.cc), in order, as "Lost" lines name them. */
const LOST_WHERE = ['bpf count table full', 'bpf packet ring full', 'bpf program skipped (nested on its cpu)'];

/** Calls the addon, turning its failure into the one-line error that names the cause and the fallback. */
function native<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof Error && typeof (err as Partial<BpfFailure>).stage === 'string')
      throw bpfError(err as unknown as BpfFailure);
    throw err;
  }
}

export class BpfBackend implements Backend {
  readonly name = 'bpf' as const;
  readonly capabilities: BackendCapabilities;
  private readonly program: NativeBpfProgram;
  private readonly reasons: ReadonlyMap<number, string>;
  private readonly recordBytes: number;
  private readonly opts: BpfOptions;
  private readonly clock: Clock;
  private listener: EventListener | null = null;
  private config: MonitorConfig = { alertMode: 'summary', truncLen: 0, queueLen: 0 };
  private timer: NodeJS.Timeout | null = null;
  /** Count-table flips still owed in packet mode to what summary mode counted before a switch. */
  private countFlipsOwed = 0;
  /** The next slice of the ring, queued behind whatever the event loop has to do first (writes, signals). */
  private nextSlice: NodeJS.Immediate | null = null;
  private monitoring = false;
  private closed = false;
  private offsetNs = 0n;
  /** Per LOST_WHERE entry, what was already reported (the kernel's counters are cumulative). */
  private readonly lostSeen: bigint[] = LOST_WHERE.map(() => 0n);

  constructor(program: NativeBpfProgram, reasons: ReadonlyMap<number, string>, recordBytes: number, opts: BpfOptions) {
    this.program = program;
    this.reasons = reasons;
    this.recordBytes = recordBytes;
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.capabilities = { ...BPF_OFFER, reasons, kernelFilter: this.kernelFilter() };
  }

  /** Filters on protocol, reason, namespace and device, evaluated by the program before it counts or copies a drop. */
  private kernelFilter(): KernelFilter {
    return {
      syntax: 'field-sets',
      reasons: this.reasons,
      maxValues: MAX_FILTER_VALUES,
      apply: async (sets: KernelSets | null) => {
        const { word, values } = encodeFilter(sets);
        native(() => this.program.filter(word, values));
      },
    };
  }

  onEvent(listener: EventListener): void {
    this.listener = listener;
  }

  private emit(event: BackendEvent): void {
    this.listener?.(event);
  }

  get running(): boolean {
    return this.monitoring;
  }

  async start(options: StartOptions): Promise<void> {
    if (this.closed) throw new DropwatchError('E_STATE', 'bpf backend is closed');
    if (this.monitoring) throw new DropwatchError('E_STATE', 'already monitoring');
    if (options.hw) throw new DropwatchError('E_UNSUPPORTED', 'hardware drops are reported by NET_DM only, not by bpf');
    if (options.stack) throw new DropwatchError('E_UNSUPPORTED', 'the bpf backend reports no call chains');
    // Counts left from before (a stop that failed half-way) belong to no interval now.
    native(() => this.program.drain());
    native(() => this.program.drain());
    this.configure();
    native(() => this.program.attach());
    this.monitoring = true;
    this.schedule();
  }

  private configure(): void {
    const packet = this.config.alertMode === 'packet';
    if (packet) this.offsetNs = wallClockOffset(this.clock);
    // A run that read summary mode before the switch may count into the table the next flip makes active.
    this.countFlipsOwed = packet && this.monitoring ? 2 : 0;
    const capture = this.config.truncLen === 0 ? MAX_CAPTURE : Math.min(this.config.truncLen, MAX_CAPTURE);
    native(() =>
      this.program.configure(packet ? MODE_PACKET : MODE_SUMMARY, capture, this.opts.wakeupBytes ?? 512 * 1024),
    );
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    const packet = this.config.alertMode === 'packet';
    const every = packet ? (this.opts.pollIntervalMs ?? 100) : (this.opts.drainIntervalMs ?? 200);
    this.timer = setInterval(() => this.collect(), every);
    if (packet) native(() => this.program.watch(this.onWake));
    else this.program.unwatch();
  }

  /** The kernel woke us: a burst crossed wakeupBytes before the timer came round. */
  private readonly onWake = (): void => {
    try {
      if (!this.nextSlice && this.readSlice()) this.continueReading();
    } catch (err) {
      this.warn(err);
    }
  };

  /** Counts, a slice of packets (the rest on the next turns), and any new losses. */
  private collect(): void {
    try {
      // A flip waits out an RCU grace period, blocking the loop: packet mode flips only for what summary mode left.
      if (this.config.alertMode === 'summary' || this.countFlipsOwed > 0) {
        this.drainCounts();
        this.countFlipsOwed = Math.max(0, this.countFlipsOwed - 1);
      }
      // A flood already being read goes on at its pace, one slice a turn.
      if (!this.nextSlice && this.readSlice()) this.continueReading();
      this.reportLosses();
    } catch (err) {
      this.warn(err);
    }
  }

  private warn(err: unknown): void {
    this.opts.onWarning?.(err instanceof Error ? err.message : String(err));
  }

  private drainCounts(): void {
    const records = decodeCounts(native(() => this.program.drain()));
    if (records.length > 0) this.emit({ kind: 'summary', entries: summaryEntries(records, this.reasons) });
  }

  /** Emits one slice of the ring's records; true when the slice was full, so more may be waiting. */
  private readSlice(): boolean {
    const bytes = native(() => this.program.consume(SLICE_BYTES));
    for (const record of decodePackets(bytes, this.recordBytes))
      this.emit({ kind: 'packet', packet: this.packetDrop(record) });
    return bytes.length >= SLICE_BYTES;
  }

  /** Reads the next slice on the next turn of the event loop, after the I/O this one queued. */
  private continueReading(): void {
    if (this.nextSlice || !this.monitoring) return;
    this.nextSlice = setImmediate(() => {
      this.nextSlice = null;
      try {
        if (this.readSlice()) this.continueReading();
      } catch (err) {
        this.warn(err);
      }
    });
  }

  /** Everything the ring still holds, a slice per turn of the event loop. */
  private async drainPackets(): Promise<void> {
    do await new Promise((resolve) => setImmediate(resolve));
    while (this.readSlice());
  }

  private packetDrop(r: PacketRecord): PacketDrop {
    const packet: PacketDrop = {
      origin: 'software',
      pc: r.location,
      timestampNs: r.monoNs + this.offsetNs,
      reason: reasonName(this.reasons, r.reason),
      protocol: r.protocol,
      origLen: r.origLen,
    };
    if (r.ifindex !== 0) packet.inPort = { ifindex: r.ifindex, ...(r.ifname === '' ? {} : { name: r.ifname }) };
    // 0: neither a device nor a socket said which namespace, as for summary places.
    packet.netns = r.netns === 0 ? null : r.netns;
    if (r.data.length > 0) {
      packet.payload = r.data;
      packet.flow = decodeFlow(r.data, r.fromMac ? undefined : r.protocol);
    }
    if (r.pid > 0) {
      packet.pid = r.pid;
      packet.comm = r.comm;
    }
    return packet;
  }

  private reportLosses(): void {
    const now = native(() => this.program.lost());
    for (const [i, where] of LOST_WHERE.entries()) {
      const count = now[i]! - this.lostSeen[i]!;
      if (count <= 0n) continue;
      this.lostSeen[i] = now[i]!;
      this.emit({ kind: 'lost', count: Number(count), where });
    }
  }

  /** Detaches (the kernel waits out running programs), then delivers what the tables and the ring still hold. */
  async stop(): Promise<void> {
    if (!this.monitoring) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.nextSlice) clearImmediate(this.nextSlice);
    this.nextSlice = null;
    this.program.unwatch();
    this.monitoring = false;
    native(() => this.program.detach());
    try {
      this.drainCounts();
      await this.drainPackets();
      this.reportLosses();
    } catch (err) {
      this.warn(err);
    }
  }

  async setConfig(change: Partial<MonitorConfig>): Promise<void> {
    if (change.queueLen !== undefined)
      throw new DropwatchError('E_UNSUPPORTED', 'the bpf backend has no per-CPU packet queue (it uses a ring buffer)');
    if (change.truncLen !== undefined) {
      if (!Number.isInteger(change.truncLen) || change.truncLen < 0)
        throw new DropwatchError('E_BAD_INPUT', `bad truncation length ${String(change.truncLen)}`);
      this.config = { ...this.config, truncLen: change.truncLen };
    }
    if (change.alertMode !== undefined) {
      if (change.alertMode !== 'summary' && change.alertMode !== 'packet')
        throw new DropwatchError('E_BAD_INPUT', `unknown alert mode ${String(change.alertMode)}`);
      this.config = { ...this.config, alertMode: change.alertMode };
    }
    if (this.monitoring) {
      this.configure();
      this.schedule();
    }
  }

  async getConfig(): Promise<MonitorConfig> {
    return { ...this.config };
  }

  async getStats(): Promise<Stats> {
    if (!this.closed) this.reportLossesQuietly();
    const lost: LostCount[] = LOST_WHERE.map((where, i) => ({ where, count: Number(this.lostSeen[i]) }));
    if (this.closed) return { lost };
    return { lost, kernelFiltered: Number(native(() => this.program.filtered())) };
  }

  /** Losses seen by getStats() between intervals are still reported as events, so the ledger stays exact. */
  private reportLossesQuietly(): void {
    try {
      this.reportLosses();
    } catch {
      // Stats then show what was last read.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.stop();
    } finally {
      this.closed = true;
      this.program.close();
    }
  }
}

/**
 * Loads the addon, reads the reason table from BTF and loads (but does not attach) the program, so a kernel that
 * cannot run it is known before monitoring starts. Throws DropwatchError: E_BPF_MISSING (no addon, no BTF, a
 * verifier rejection, a corrupt object) or E_PRIVILEGE, each one line naming the cause and `-b tracefs`.
 */
export async function openBpfBackend(options: BpfOptions = {}): Promise<BpfBackend> {
  const addon = options.addon ?? loadBpfAddon();
  const { readFile } = await import('node:fs/promises');
  let object: Buffer | undefined;
  if (options.objectPath !== undefined) {
    try {
      object = await readFile(options.objectPath);
    } catch (err) {
      throw new DropwatchError(
        'E_BPF_MISSING',
        `cannot read the BPF object ${options.objectPath}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
  const reasons = reasonTable(native(() => addon.dropReasons(options.btfPath)));
  if (reasons.size === 0)
    throw new DropwatchError(
      'E_BPF_MISSING',
      'this kernel names no drop reasons in its BTF (enum skb_drop_reason, Linux 5.17 and later); use -b tracefs',
    );
  const program = native(() => new addon.BpfProgram(object, options.btfPath, options.ringBytes));
  return new BpfBackend(program, reasons, addon.packetRecordBytes, options);
}
