// TracefsBackend: the Backend contract over the skb:kfree_skb tracepoint in a private tracefs instance, for
// kernels without NET_DM. Software drops only; no payload; packet timestamps converted from the 'mono' trace clock.
// The instance exists only while monitoring: making and removing one allocates and frees a ring buffer per CPU, which
// a dropwatch that never starts monitoring should not pay for, and an idle dropwatch should hold nothing. Call chains
// come from a second, small instance whose gate the reader opens and closes (reader-chains.ts): our ring buffer then
// holds drops only, so what it loses is drops, counted exactly, and no write of ours waits on the kernel for long.
import type { Worker } from 'node:worker_threads';
import path from 'node:path';
import { TRACEFS_OFFER } from './source.js';
import type {
  Backend,
  BackendCapabilities,
  BackendEvent,
  EventListener,
  LostCount,
  MonitorConfig,
  PacketDrop,
  StartOptions,
  Stats,
  SummaryEntry,
} from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import {
  kernelStackLayout,
  kfreeSkbLayout,
  parseEventFormat,
  parseHeaderEvent,
  parseHeaderPage,
  type KernelStackLayout,
  type KfreeSkbLayout,
} from './format.js';
import { processNames, type ProcessNames } from './process.js';
import type { PageLayouts } from './page.js';
import {
  checkTracefs,
  cleanupTracefsSync,
  DEFAULT_PREFIX,
  findTracefs,
  holdTracefs,
  listCpus,
  readTracefs,
  reclaimStale,
  pidAlive,
  TracefsInstance,
} from './instance.js';
import { InstanceGuard } from './guard.js';
import { systemClock, wallClockOffset, type Clock } from './clock.js';
import {
  CMD_ABORT,
  CMD_DRAIN,
  CTL_CMD,
  CTL_MODE,
  CTL_UNTAKEN,
  CTL_WAKE,
  MODE_PACKET,
  MODE_SUMMARY,
  NO_VALUE,
  type ChainInit,
  type ChainRow,
  type ReaderCommand,
  type ReaderInit,
  type ReaderMessage,
} from './reader-protocol.js';

export interface TracefsOptions {
  /** tracefs mount point; default: /sys/kernel/tracing (mounted if needed), else /sys/kernel/debug/tracing. */
  root?: string;
  /** Allow mounting tracefs at /sys/kernel/tracing when it is not mounted (default true). */
  mount?: boolean;
  /** Instance name prefix; the instance is `<prefix>-<pid>` (default 'dropwatch'). */
  instancePrefix?: string;
  /** Per-CPU ring buffer, KiB (default 4096: about 0.15 s of a 600k drops/s flood per CPU). */
  bufferSizeKb?: number;
  /** How often the reader posts batches and checks loss counters, ms (default 200). */
  flushIntervalMs?: number;
  /** Wait after an empty read, ms (default 10); doubles while idle up to maxPollIntervalMs. */
  pollIntervalMs?: number;
  /** Longest wait between reads when idle, ms (default 100): bounds the delay before the first drop after a lull. */
  maxPollIntervalMs?: number;
  /** Packet-mode records held per flush before more are counted as lost (default 65536). */
  maxPendingPackets?: number;
  /** How long stop() waits for the reader to drain, ms (default 5000). */
  drainTimeoutMs?: number;
  /** With stacks on, call chains kept per second at most (default 1000); the kernel takes about as many. */
  stackBudget?: number;
  clock?: Clock;
  /** For naming the instance (default process.pid). */
  pid?: number;
  onWarning?: (message: string) => void;
  /** For tests: changes the layout read from `format`, e.g. to one no record matches, as a decoder mismatch would. */
  adjustLayout?: (layout: KfreeSkbLayout) => KfreeSkbLayout;
}

const WORKER_URL = new URL('./reader-worker.js', import.meta.url);
const CALIBRATE_EVERY_NS = 10_000_000_000n;
/** The chain instance's filter while its gate is closed: no event has type 0, so no drop passes. */
const CLOSED_GATE = 'common_type == 0';
/**
 * The reader keeps little on its heap (a page buffer, per-location counts; packet batches are off-heap typed arrays),
 * so V8's default young generation only costs resident memory (BENCHMARKS.md has the figures). The old-generation cap
 * is far above what it holds; hitting it ends the worker with an 'error' that we report.
 */
const READER_LIMITS = Object.freeze({ maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 });
let exitHookInstalled = false;

/** One monitoring stretch, start() to stop(): our private instances and the reader thread on them. */
interface ActiveInstance {
  instance: TracefsInstance;
  /** The chain instance when stacks are on. */
  chains: TracefsInstance | null;
  worker: Worker;
  ctl: Int32Array;
  drained: Promise<void>;
  exited: Promise<void>;
  /** Per kind and CPU, the count the reader reported for this instance (a new instance starts its counters at 0). */
  lostSeen: Record<LostKind, Map<number, number>>;
  /** Once a second: check that nobody silenced our instance, and put back what was changed. */
  tick: NodeJS.Timeout | null;
  guard: InstanceGuard;
  /** The instance is still checked each tick (until it cannot be read). */
  checking: boolean;
}

/** What start() makes before the reader runs: the instances and their descriptors. */
interface Instances {
  instance: TracefsInstance;
  fds: number[];
  stack: KernelStackLayout | null;
  chains: { instance: TracefsInstance; init: ChainInit } | null;
}

/** What the reader counts as lost, and how each is named in "Lost" lines and stats (with `cpuN` after it). */
const LOST_KINDS = {
  ring: 'tracefs ring buffer',
  backlog: 'tracefs reader backlog',
  undecoded: 'tracefs records not decodable',
} as const;
type LostKind = keyof typeof LOST_KINDS;
const lostMaps = (): Record<LostKind, Map<number, number>> => ({
  ring: new Map(),
  backlog: new Map(),
  undecoded: new Map(),
});

export class TracefsBackend implements Backend {
  readonly name = 'tracefs' as const;
  readonly capabilities: BackendCapabilities;
  readonly layout: KfreeSkbLayout;
  /** The tracefs mount point in use. */
  readonly root: string;
  private readonly processes: ProcessNames;
  private readonly layouts: PageLayouts;
  private readonly pageSize: number;
  private readonly opts: TracefsOptions;
  private readonly prefix: string;
  private readonly cpus: number[];
  private readonly clock: Clock;
  /** The kernel filter to install in each new instance; null: none. */
  private filterExpr: string | null = null;
  private listener: EventListener | null = null;
  private config: MonitorConfig = { alertMode: 'summary', truncLen: 0, queueLen: 0 };
  private active: ActiveInstance | null = null;
  private closed = false;
  private offsetNs = 0n;
  private calibratedAt = 0n;
  /** Per kind and CPU, cumulative since open (the instances added up). */
  private readonly lost = lostMaps();
  private stopping: Promise<void> | null = null;

  /** Lets tracefs go at close: unmounts it when we mounted it and no other backend of ours uses it. */
  private readonly releaseTracefs: () => void;

  /** Made by openTracefsBackend, which finds tracefs and reads what this takes; `release` lets tracefs go at close. */
  constructor(
    root: string,
    prefix: string,
    cpus: number[],
    layout: KfreeSkbLayout,
    layouts: PageLayouts,
    opts: TracefsOptions,
    release: () => void = () => {},
  ) {
    this.root = root;
    this.releaseTracefs = release;
    this.processes = processNames(root);
    this.prefix = prefix;
    this.cpus = cpus;
    this.layout = layout;
    this.capabilities = {
      ...TRACEFS_OFFER,
      reasons: layout.reasons,
      kernelFilter: {
        syntax: 'ftrace-event',
        reasons: layout.reasons,
        apply: (expression) => (expression === null ? this.clearFilter() : this.setFilter(expression)),
      },
    };
    this.layouts = layouts;
    this.pageSize = layouts.page.dataOffset + layouts.page.dataSize;
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    for (const cpu of cpus) this.lost.ring.set(cpu, 0);
  }

  /** The private instance while monitoring (created by start(), removed by stop()); null otherwise. */
  get instance(): TracefsInstance | null {
    return this.active?.instance ?? null;
  }

  onEvent(listener: EventListener): void {
    this.listener = listener;
  }

  private emit(event: BackendEvent): void {
    this.listener?.(event);
  }

  private warn(message: string): void {
    this.opts.onWarning?.(message);
  }

  get running(): boolean {
    return this.active !== null;
  }

  async start(options: StartOptions): Promise<void> {
    // Loaded at the first start, not with the backend: the prompt shows sooner. The checks below follow the await.
    const { Worker: ReaderThread } = await import('node:worker_threads');
    if (this.closed) throw new DropwatchError('E_STATE', 'tracefs backend is closed');
    if (this.active || this.stopping) throw new DropwatchError('E_STATE', 'already monitoring');
    if (options.hw)
      throw new DropwatchError('E_UNSUPPORTED', 'hardware drops are reported by NET_DM only, not by tracefs');
    const made = this.createInstances(options.stack === true);
    const ctl = new Int32Array(new SharedArrayBuffer(16));
    Atomics.store(ctl, CTL_MODE, this.config.alertMode === 'packet' ? MODE_PACKET : MODE_SUMMARY);
    const worker = this.startReader(ReaderThread, made, ctl);
    const active = this.listenToReader(made, worker, ctl);
    this.active = active;
    this.calibrate(true);
    try {
      // Ours first: its probe then runs first for each drop, so a chain's drop is never read before its count.
      made.instance.setEventEnabled(true);
      made.chains?.instance.setEventEnabled(true);
    } catch (err) {
      await this.stop();
      throw err;
    }
    active.tick = setInterval(() => this.keepEnabled(active), 1000).unref();
  }

  /**
   * Makes our instance with the kernel filter set and, when chains are asked for, the chain instance; opens each
   * CPU's pipe. Removes whatever it made when a step fails.
   */
  private createInstances(wantStacks: boolean): Instances {
    // Read before anything is made: a failure here has nothing to undo.
    const stack = wantStacks ? this.stackLayout() : null;
    const made: TracefsInstance[] = [];
    try {
      // Private instance: its own buffer size, clock, filter and enable switch, so global tracing is never touched.
      const instance = this.makeInstance(this.opts.bufferSizeKb ?? 4096);
      made.push(instance);
      if (this.filterExpr !== null) instance.setFilter(this.filterExpr);
      const fds = this.cpus.map((cpu) => instance.openRaw(cpu));
      if (stack === null) return { instance, fds, stack, chains: null };
      const chains = this.makeChainInstance();
      made.push(chains.instance);
      return { instance, fds, stack, chains };
    } catch (err) {
      for (const instance of made) instance.remove(); // closes the descriptors too
      throw err;
    }
  }

  private makeInstance(bufferSizeKb: number, suffix?: 'chains'): TracefsInstance {
    return TracefsInstance.create({
      root: this.root,
      prefix: this.prefix,
      pid: this.opts.pid,
      suffix,
      bufferSizeKb,
      traceClock: 'mono',
      warn: this.opts.onWarning,
    });
  }

  /**
   * The chain instance: our event with a kernel_stack record after each drop it records (options/stacktrace), gated
   * by its filter, closed until the reader opens it. Sized for a second of chains on one CPU (a drop and a chain of
   * about 30 frames take some 300 bytes); an overrun only costs samples.
   */
  private makeChainInstance(): { instance: TracefsInstance; init: ChainInit } {
    const budget = this.stackBudget;
    const instance = this.makeInstance(Math.max(64, Math.ceil(budget / 2)), 'chains');
    try {
      instance.setFilter(CLOSED_GATE);
      instance.setOption('stacktrace', true);
      const fds = this.cpus.map((cpu) => instance.openRaw(cpu));
      const filterPath = instance.eventFile('filter');
      return { instance, init: { fds, filterPath, filter: this.filterExpr, closedFilter: CLOSED_GATE, budget } };
    } catch (err) {
      instance.remove();
      throw err;
    }
  }

  /** Starts the reader thread on the instances' per-CPU descriptors; removes the instances if it cannot. */
  private startReader(ReaderThread: typeof Worker, made: Instances, ctl: Int32Array<SharedArrayBuffer>): Worker {
    const cpus = this.cpus;
    const { instance } = made;
    const init: ReaderInit = {
      cpus,
      fds: made.fds,
      statsPaths: cpus.map((c) => instance.path(path.join('per_cpu', `cpu${c}`, 'stats'))),
      pageSize: this.pageSize,
      layouts: this.layouts,
      skb: this.layout,
      ctl: ctl.buffer,
      flushMs: this.opts.flushIntervalMs ?? 200,
      pollMs: this.opts.pollIntervalMs ?? 10,
      maxPollMs: this.opts.maxPollIntervalMs ?? 100,
      maxPending: this.opts.maxPendingPackets ?? 65536,
      stack: made.stack,
      chains: made.chains?.init ?? null,
    };
    try {
      return new ReaderThread(WORKER_URL, { workerData: init, resourceLimits: READER_LIMITS });
    } catch (err) {
      instance.remove();
      made.chains?.instance.remove();
      throw new DropwatchError('E_IO', `cannot start the tracefs reader thread: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** The record of this monitoring stretch, with the reader's messages and failures routed to it. */
  private listenToReader(made: Instances, worker: Worker, ctl: Int32Array<SharedArrayBuffer>): ActiveInstance {
    let drainedResolve!: () => void;
    const drained = new Promise<void>((r) => (drainedResolve = r));
    const exited = new Promise<void>((resolve) => {
      worker.once('exit', () => {
        drainedResolve();
        resolve();
      });
    });
    const active: ActiveInstance = {
      instance: made.instance,
      chains: made.chains?.instance ?? null,
      worker,
      ctl,
      drained,
      exited,
      lostSeen: lostMaps(),
      tick: null,
      guard: new InstanceGuard(
        made.instance,
        () => this.filterExpr,
        (m) => this.warn(m),
      ),
      checking: true,
    };
    worker.on('message', (m: ReaderMessage) => this.onMessage(active, m, drainedResolve));
    worker.on('error', (err) => this.warn(`tracefs reader failed: ${err.message}`));
    return active;
  }

  /**
   * Another root process can silence our instance (its event, tracing, triggers, pid filters, CPU mask) or change
   * its filter; drops would stop, or others pass, with no word. Say so once, and put back what we set.
   */
  private keepEnabled(active: ActiveInstance): void {
    if (!active.checking || this.stopping || this.active !== active) return;
    try {
      active.guard.check();
    } catch (err) {
      active.checking = false;
      this.warn(`cannot check our tracefs instance any more: ${(err as Error).message}`);
    }
  }

  private get stackBudget(): number {
    return this.opts.stackBudget ?? 1000;
  }

  private stackLayoutRead: KernelStackLayout | null = null;
  /** The kernel_stack record's layout, read once, when stacks are first asked for (before any instance is made). */
  private stackLayout(): KernelStackLayout {
    this.stackLayoutRead ??= kernelStackLayout(
      parseEventFormat(readTracefs(this.root, 'events/ftrace/kernel_stack/format')),
    );
    return this.stackLayoutRead;
  }

  private calibrate(force: boolean): void {
    const now = this.clock.monotonicNs();
    if (!force && now - this.calibratedAt < CALIBRATE_EVERY_NS) return;
    this.offsetNs = wallClockOffset(this.clock);
    this.calibratedAt = now;
  }

  private reasonName(reason: number): string | null {
    if (reason === NO_VALUE) return null;
    return this.layout.reasons.get(reason) ?? `UNKNOWN(${reason})`;
  }

  /** Sampled chains as count-0 entries: they add samples to their location's line without adding drops. */
  private chainEntries(rows: readonly ChainRow[]): SummaryEntry[] {
    return rows.map(([hi, lo, reason, count, callers]) => ({
      origin: 'software',
      pc: (BigInt(hi) << 32n) | BigInt(lo),
      reason: this.reasonName(reason),
      count: 0,
      stacks: { sampled: count, chains: callers.length === 0 ? [] : [{ frames: [...callers], count }] },
    }));
  }

  private emitPackets(m: Extract<ReaderMessage, { type: 'packets' }>): void {
    this.calibrate(false);
    const stacks = m.stacks ? new Map(m.stacks) : null;
    this.processes.forget();
    for (let i = 0; i < m.count; i++) {
      const reason = this.reasonName(m.reasonProtocolPairs[i * 2]!);
      const protocol = m.reasonProtocolPairs[i * 2 + 1]!;
      const packet: PacketDrop = { origin: 'software', pc: m.loc[i]!, timestampNs: m.ts[i]! + this.offsetNs };
      if (reason !== null) packet.reason = reason;
      if (protocol !== NO_VALUE) packet.protocol = protocol;
      const pid = m.pid[i]!;
      if (pid > 0) {
        packet.pid = pid;
        const comm = this.processes.name(pid);
        if (comm !== null) packet.comm = comm;
      }
      const chain = stacks?.get(i);
      if (chain) packet.stack = [...chain];
      this.emit({ kind: 'packet', packet });
    }
  }

  private onMessage(active: ActiveInstance, m: ReaderMessage, drained: () => void): void {
    switch (m.type) {
      case 'summary': {
        const entries: SummaryEntry[] = m.rows.map(([hi, lo, reason, count]) => ({
          origin: 'software',
          pc: (BigInt(hi) << 32n) | BigInt(lo),
          reason: this.reasonName(reason),
          count,
        }));
        if (m.chains) entries.push(...this.chainEntries(m.chains));
        if (entries.length > 0) this.emit({ kind: 'summary', entries });
        break;
      }
      case 'packets':
        try {
          this.emitPackets(m);
        } finally {
          // Handled: the reader may read again; wake it from the longer idle wait it may be in.
          Atomics.sub(active.ctl, CTL_UNTAKEN, 1);
          Atomics.add(active.ctl, CTL_WAKE, 1);
          Atomics.notify(active.ctl, CTL_WAKE);
        }
        break;
      case 'lost': {
        // Counts are cumulative per instance; the backend's totals add the instances up.
        for (const kind of Object.keys(LOST_KINDS) as LostKind[]) {
          const seen = active.lostSeen[kind].get(m.cpu) ?? 0;
          const now = m[kind];
          if (now <= seen) continue;
          active.lostSeen[kind].set(m.cpu, now);
          this.lost[kind].set(m.cpu, (this.lost[kind].get(m.cpu) ?? 0) + now - seen);
          this.emit({ kind: 'lost', count: now - seen, where: `${LOST_KINDS[kind]} cpu${m.cpu}` });
        }
        break;
      }
      case 'drained':
        drained();
        break;
      case 'error':
        this.warn(`tracefs reader: ${m.message}`);
        break;
    }
  }

  /**
   * Disables the event, reads what the kernel still holds (the last partial pages), delivers it, then removes the
   * instance and resolves.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    const active = this.active;
    if (!active) return;
    if (active.tick) clearInterval(active.tick);
    active.tick = null;
    this.stopping = (async () => {
      let failure: { error: unknown } | null = null;
      try {
        active.instance.setEventEnabled(false);
      } catch (err) {
        failure = { error: err };
      }
      Atomics.store(active.ctl, CTL_CMD, failure === null ? CMD_DRAIN : CMD_ABORT);
      Atomics.add(active.ctl, CTL_WAKE, 1);
      Atomics.notify(active.ctl, CTL_WAKE);
      const timeoutMs = this.opts.drainTimeoutMs ?? 5000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        active.drained.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.warn(`tracefs reader did not drain within ${timeoutMs} ms`);
        Atomics.store(active.ctl, CTL_CMD, CMD_ABORT);
        Atomics.notify(active.ctl, CTL_WAKE);
      }
      // Never blocked in read() (descriptors are non-blocking), so the worker always reaches its exit.
      await Promise.race([active.exited, new Promise((r) => setTimeout(r, 1000).unref())]);
      await active.worker.terminate();
      this.active = null;
      for (const instance of [active.instance, active.chains]) {
        try {
          instance?.remove(); // closes our descriptors first: an instance with open files cannot go
        } catch (err) {
          failure ??= { error: err };
        }
      }
      if (failure !== null) throw failure.error;
    })();
    try {
      await this.stopping;
    } finally {
      this.stopping = null;
    }
  }

  async setConfig(change: Partial<MonitorConfig>): Promise<void> {
    if (change.truncLen !== undefined) {
      throw new DropwatchError('E_UNSUPPORTED', 'tracefs backend carries no payload, so there is nothing to truncate');
    }
    if (change.queueLen !== undefined) {
      throw new DropwatchError(
        'E_UNSUPPORTED',
        'tracefs backend has no per-CPU packet queue (its ring buffer is sized with bufferSizeKb)',
      );
    }
    if (change.alertMode !== undefined) {
      if (change.alertMode !== 'summary' && change.alertMode !== 'packet') {
        throw new DropwatchError('E_BAD_INPUT', `unknown alert mode ${String(change.alertMode)}`);
      }
      this.config = { ...this.config, alertMode: change.alertMode };
      if (this.active) {
        if (change.alertMode === 'packet') this.calibrate(true);
        Atomics.store(this.active.ctl, CTL_MODE, change.alertMode === 'packet' ? MODE_PACKET : MODE_SUMMARY);
        Atomics.add(this.active.ctl, CTL_WAKE, 1);
        Atomics.notify(this.active.ctl, CTL_WAKE);
      }
    }
  }

  async getConfig(): Promise<MonitorConfig> {
    return { ...this.config };
  }

  /**
   * lost: one entry per CPU ring buffer (cumulative since open), then reader-backlog and undecodable-record entries
   * where there were any. software stays undefined.
   */
  async getStats(): Promise<Stats> {
    const lost: LostCount[] = [];
    for (const kind of Object.keys(LOST_KINDS) as LostKind[]) {
      for (const [cpu, count] of [...this.lost[kind]].sort((a, b) => a[0] - b[0])) {
        if (count > 0 || kind === 'ring') lost.push({ where: `${LOST_KINDS[kind]} cpu${cpu}`, count });
      }
    }
    return { lost };
  }

  /**
   * Sets the kernel filter expression for kfree_skb. While monitoring it is written to the instance at once (the
   * kernel's complaint becomes E_BAD_INPUT and the previous filter stays); otherwise it is kept and installed by the
   * next start(), which then reports a rejection.
   */
  async setFilter(expression: string): Promise<void> {
    if (this.closed) throw new DropwatchError('E_STATE', 'tracefs backend is closed');
    if (/[\n\0]/.test(expression)) throw new DropwatchError('E_BAD_INPUT', 'kernel filter must be one line');
    const instance = this.active?.instance;
    if (instance) {
      try {
        instance.setFilter(expression);
      } catch (err) {
        // The kernel swaps in a disabled filter holding the error text even when it rejects one (apply_event_filter),
        // so the old filter is gone and everything passes: put it back, or monitoring silently widens.
        try {
          if (this.filterExpr === null) instance.clearFilter();
          else instance.setFilter(this.filterExpr);
        } catch (restoreErr) {
          this.warn(`could not restore the kernel filter: ${(restoreErr as Error).message}`);
        }
        throw err;
      }
    }
    this.filterExpr = expression;
    this.tellChains();
  }

  async clearFilter(): Promise<void> {
    if (this.closed) throw new DropwatchError('E_STATE', 'tracefs backend is closed');
    this.active?.instance.clearFilter();
    this.filterExpr = null;
    this.tellChains();
  }

  /** Chains only for the drops the filter keeps: the reader opens the chain gate with the new one. */
  private tellChains(): void {
    const active = this.active;
    if (!active?.chains) return;
    active.worker.postMessage({ type: 'filter', filter: this.filterExpr } satisfies ReaderCommand);
    Atomics.add(active.ctl, CTL_WAKE, 1);
    Atomics.notify(active.ctl, CTL_WAKE);
  }

  /** The filter the kernel holds while monitoring, else the one start() will install ('none' when there is none). */
  async getFilter(): Promise<string> {
    if (this.active) return this.active.instance.filter();
    return this.filterExpr ?? 'none';
  }

  /** Stops if monitoring (which removes the instances), then lets tracefs go (unmounted if ours). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.stop();
    } finally {
      this.closed = true;
      // stop() removes the instances even when it throws; this covers a stop that never got that far.
      const left = this.active;
      this.active = null;
      try {
        left?.instance.remove();
        left?.chains?.remove();
      } finally {
        this.releaseTracefs();
      }
    }
  }
}

/**
 * Finds tracefs, checks (without creating anything) that an instance could be made, reclaims instances of dead
 * runs and reads the event layout from the top-level `events/` files, which every instance shares. Throws
 * DropwatchError: E_USAGE (bad prefix), E_PRIVILEGE (not root), E_TRACEFS_MISSING, E_EVENT_MISSING, E_DECODE
 * (format unreadable). The instance itself is made by start().
 */
export async function openTracefsBackend(options: TracefsOptions = {}): Promise<TracefsBackend> {
  const root = findTracefs(options.root, options.mount ?? true);
  if (!exitHookInstalled) {
    // A last resort only: stop()/close() are the real cleanup; SIGKILL leaves an instance the next run reclaims.
    process.once('exit', cleanupTracefsSync);
    exitHookInstalled = true;
  }
  const release = holdTracefs(root);
  try {
    const prefix = options.instancePrefix ?? DEFAULT_PREFIX;
    checkTracefs(root, prefix);
    // A readdir when there is nothing to reclaim; start() looks again, for runs killed in between.
    reclaimStale(root, prefix, pidAlive, options.onWarning);
    const layouts: PageLayouts = {
      page: parseHeaderPage(readTracefs(root, 'events/header_page')),
      event: parseHeaderEvent(readTracefs(root, 'events/header_event')),
    };
    const read = kfreeSkbLayout(parseEventFormat(readTracefs(root, 'events/skb/kfree_skb/format')));
    const layout = options.adjustLayout ? options.adjustLayout(read) : read;
    return new TracefsBackend(root, prefix, listCpus(root), layout, layouts, options, release);
  } catch (err) {
    release();
    throw err;
  }
}
