// BpfBackend: the Backend contract over dropwatch's BPF program on tp_btf/kfree_skb. Summary mode counts in the
// kernel and drains the idle count table every interval; packet mode reads the ring buffer when the kernel wakes it
// (and on a slow timer), a bounded slice per turn of the event loop.
// Nothing is pinned: the program, maps and link are this process's descriptors, so even kill -9 leaves nothing.
import { readFileSync } from 'node:fs';
import { BPF_OFFER } from './source.js';
import type {
  Backend,
  BackendCapabilities,
  BackendEvent,
  DropField,
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
import { chainEntries, decodeChains, PacketChains, StackBudget } from './chains.js';
import { bpfError, memoryCgroup, type BpfFailure } from './errors.js';
import { encodeFilter, MAX_FILTER_VALUES } from './filter.js';
import { loadBpfAddon, type BpfAddon, type NativeBpfProgram } from './native.js';
import { readSubsystemReasons } from './reasons.js';
import { decodeTrapCounts, decodeTrapPackets, TrapTally, trapEntries, trapPacket } from './traps.js';
import { noDevlink } from '../backend/words.js';

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
  /** With stacks on, call chains taken per second at most (default 1000), as the tracefs source keeps. */
  stackBudget?: number;
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
/** The hardware drop program's (trapsLost() in native/bpf.cc), in order. */
const TRAP_LOST_WHERE = [
  'bpf trap count table full',
  'bpf trap ring full',
  'bpf trap program skipped (nested on its cpu)',
];

/** This process's memory cgroup, which a failure for want of memory names; null where /proc does not say. */
function ownMemoryCgroup(): string | null {
  try {
    return memoryCgroup(readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    return null;
  }
}

/** Calls the addon, turning its failure into the one-line error that names the cause and the fallback. */
function native<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof Error && typeof (err as Partial<BpfFailure>).stage === 'string')
      throw bpfError(err as unknown as BpfFailure, { memoryCgroup: ownMemoryCgroup() });
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
  /** While call chains are on: the program's budget, and packet chains waiting for their records. */
  private stacks: { budget: StackBudget; packets: PacketChains } | null = null;
  /** Drops delivered since open (counted or read), for the chain budget's rate. */
  private delivered = 0;
  private readonly trapLostSeen: bigint[] = TRAP_LOST_WHERE.map(() => 0n);
  /** Hardware drops are monitored in this run (the trap program is attached). */
  private hardware = false;
  private readonly trapTally = new TrapTally();

  constructor(program: NativeBpfProgram, reasons: ReadonlyMap<number, string>, recordBytes: number, opts: BpfOptions) {
    this.program = program;
    this.reasons = reasons;
    this.recordBytes = recordBytes;
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    const hw = program.hardware();
    const trap = (fields: readonly DropField[]): DropField[] => (hw ? [...fields, 'trap'] : [...fields]);
    this.capabilities = {
      ...BPF_OFFER,
      settings: { ...BPF_OFFER.settings, hw },
      fields: { summary: trap(BPF_OFFER.fields.summary), packet: trap(BPF_OFFER.fields.packet) },
      reasons,
      kernelFilter: this.kernelFilter(hw),
    };
  }

  /**
   * Filters on protocol, reason, namespace and device, evaluated by the program before it counts or copies a drop;
   * by the trap program too (`hardware`), with no reason.
   */
  private kernelFilter(hardware: boolean): KernelFilter {
    return {
      syntax: 'field-sets',
      reasons: this.reasons,
      maxValues: MAX_FILTER_VALUES,
      hardware,
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
    if (options.hw && !this.capabilities.settings.hw) throw new DropwatchError('E_UNSUPPORTED', noDevlink(this.name));
    // Counts left from before (a stop that failed half-way) belong to no interval now.
    native(() => this.program.drain());
    native(() => this.program.drain());
    this.startStacks(options.stack === true);
    this.configure();
    // As NET_DM: neither asked means software drops.
    if (options.sw || !options.hw) native(() => this.program.attach());
    if (options.hw) this.attachTraps();
    this.monitoring = true;
    this.schedule();
  }

  /** Chains on (a budget from now, leftovers dropped) or off (no drop is unwound). */
  private startStacks(on: boolean): void {
    this.stacks = null;
    if (!on) {
      native(() => this.program.stackBudget(0, 0));
      return;
    }
    native(() => this.program.chains());
    this.stacks = { budget: new StackBudget(this.opts.stackBudget ?? 1000), packets: new PacketChains() };
    this.renewStackBudget();
  }

  /** A new second: the program's chain budget again, with a stride from the last second's drops. */
  private renewStackBudget(): void {
    const setting = this.stacks?.budget.at(Number(this.clock.monotonicNs() / 1_000_000n), this.delivered);
    if (setting) native(() => this.program.stackBudget(setting.stride, setting.limit));
  }

  /** Hardware drops from now: what the trap counts hold already belongs to no interval. */
  private attachTraps(): void {
    try {
      this.trapTally.baseline(decodeTrapCounts(native(() => this.program.traps())));
      native(() => this.program.attachTraps());
    } catch (err) {
      this.program.detach();
      throw err;
    }
    this.hardware = true;
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
      if (this.monitoring) this.renewStackBudget();
      // A flip waits out an RCU grace period, blocking the loop: packet mode flips only for what summary mode left.
      if (this.config.alertMode === 'summary' || this.countFlipsOwed > 0) {
        this.drainCounts();
        this.countFlipsOwed = Math.max(0, this.countFlipsOwed - 1);
      }
      // A flood already being read goes on at its pace, one slice a turn.
      if (!this.nextSlice && this.readSlice()) this.continueReading();
      if (this.hardware) this.collectTraps();
      this.reportLosses();
    } catch (err) {
      this.warn(err);
    }
  }

  private warn(err: unknown): void {
    this.opts.onWarning?.(err instanceof Error ? err.message : String(err));
  }

  private drainCounts(): void {
    // Samples first: a sample taken out now was tallied after its drop's count, which is in this table or an earlier.
    const samples = this.stacks && this.config.alertMode === 'summary' ? this.takeChains() : [];
    const records = decodeCounts(native(() => this.program.drain()));
    for (const r of records) this.delivered += r.count;
    const entries = [...summaryEntries(records, this.reasons), ...chainEntries(samples, this.reasons)];
    if (entries.length > 0) this.emit({ kind: 'summary', entries });
  }

  /** The sampled chains the program holds now; packet chains wait for their records. */
  private takeChains(): ReturnType<typeof decodeChains> {
    const records = decodeChains(native(() => this.program.chains()));
    this.stacks?.packets.add(records);
    return records;
  }

  /** Emits one slice of the ring's records; true when the slice was full, so more may be waiting. */
  private readSlice(): boolean {
    const bytes = native(() => this.program.consume(SLICE_BYTES));
    const records = decodePackets(bytes, this.recordBytes);
    // Taken after the records: the program notes a packet's chain before it submits the record.
    if (this.stacks && records.length > 0) this.takeChains();
    this.delivered += records.length;
    for (const record of records) this.emit({ kind: 'packet', packet: this.packetDrop(record) });
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

  /** Hardware drops: what the trap counts grew by since the last read, and the trapped packets waiting. */
  private collectTraps(): void {
    const grown = this.trapTally.grown(decodeTrapCounts(native(() => this.program.traps())));
    if (grown.length > 0) this.emit({ kind: 'summary', entries: trapEntries(grown) });
    for (;;) {
      const bytes = native(() => this.program.consumeTraps(SLICE_BYTES));
      for (const record of decodeTrapPackets(bytes))
        this.emit({ kind: 'packet', packet: trapPacket(record, this.offsetNs) });
      if (bytes.length < SLICE_BYTES) return;
    }
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
      if (r.cgroup !== 0) packet.cgroup = r.cgroup;
    }
    const stack = this.stacks?.packets.take(r.monoNs, r.location);
    if (stack) packet.stack = stack;
    return packet;
  }

  private reportLosses(): void {
    this.reportLost(
      LOST_WHERE,
      this.lostSeen,
      native(() => this.program.lost()),
    );
    if (this.capabilities.settings.hw)
      this.reportLost(
        TRAP_LOST_WHERE,
        this.trapLostSeen,
        native(() => this.program.trapsLost()),
      );
  }

  private reportLost(names: readonly string[], seen: bigint[], now: readonly bigint[]): void {
    for (const [i, where] of names.entries()) {
      const count = now[i]! - seen[i]!;
      if (count <= 0n) continue;
      seen[i] = now[i]!;
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
    if (this.stacks) native(() => this.program.stackBudget(0, 0));
    if (this.hardware) native(() => this.program.detachTraps());
    try {
      this.drainCounts();
      await this.drainPackets();
      if (this.hardware) this.collectTraps();
      this.reportLosses();
    } catch (err) {
      this.warn(err);
    }
    this.hardware = false;
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
    if (this.capabilities.settings.hw)
      lost.push(...TRAP_LOST_WHERE.map((where, i) => ({ where, count: Number(this.trapLostSeen[i]) })));
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
  const core = native(() => addon.dropReasons(options.btfPath));
  const reasons = reasonTable([...core, ...(await readSubsystemReasons(options.btfPath))]);
  if (reasons.size === 0)
    throw new DropwatchError(
      'E_BPF_MISSING',
      'this kernel names no drop reasons in its BTF (enum skb_drop_reason, Linux 5.17 and later); use -b tracefs',
    );
  const program = native(() => new addon.BpfProgram(object, options.btfPath, options.ringBytes));
  return new BpfBackend(program, reasons, addon.packetRecordBytes, options);
}
