// WorkloadNames over the node: answers from a bounded cache at once, scans beside the event path, re-checks what it shows.
import { attempt, attemptNow, eachLimited, type WorkloadFiles } from './files.js';
import { ContainerNamer, type ContainerNames } from './names.js';
import { netnsOf, scanNamespaces, startOf, witnessNow, type Found } from './scan.js';
import { unknownCgroup } from './task.js';
import type { CgroupNames, CgroupWorkload, Workload, WorkloadNames } from './types.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ResolverOptions {
  files: WorkloadFiles;
  now: () => number;
  timers: Timers;
  /** Namespaces kept; the least recently looked up go first. */
  maxNamespaces: number;
  /** At most one scan starts per this many milliseconds. */
  scanIntervalMs: number;
  /** How often names being looked up are re-checked against the process or file that gave them. */
  recheckMs: number;
  /** How long an inode a scan did not find waits before it may ask for another scan. */
  retryMs: number;
  /** Names for the cgroups of tasks that dropped; without it every cgroup is unknown. */
  cgroups?: CgroupNames & { settled?(): Promise<void> };
}

interface Entry {
  found: Found;
  checkedAt: number;
  lookedAt: number;
}

const unknown = (netns: number): Workload => ({
  netns,
  netnsName: null,
  container: null,
  containerName: null,
  pod: null,
  podUid: null,
});

/** Entries looked up within this many re-check periods are kept checked; others are checked when next asked for. */
const ACTIVE_PERIODS = 10;
/** Scans spaced at least this many times their own duration apart. */
const SCAN_SHARE = 10;

export class WorkloadResolver implements WorkloadNames {
  private readonly cache = new Map<number, Entry>();
  private readonly misses = new Map<number, number>();
  private readonly containers = new Map<string, ContainerNames>();
  private wanted = new Set<number>();
  private scanTimer: unknown = null;
  private recheckTimer: unknown = null;
  private scanning: Promise<void> | null = null;
  private rechecking: Promise<void> | null = null;
  private lastScan = -Infinity;
  private lastScanCost = 0;
  private closed = false;

  constructor(private readonly o: ResolverOptions) {
    this.requestScan();
  }

  // A name is shown only if its witness (pid and start time, or /run/netns file) held the inode within 1.5 re-check periods.
  private get maxAgeMs(): number {
    return this.o.recheckMs * 1.5;
  }

  lookup(netns: number): Workload {
    const entry = this.cache.get(netns);
    const now = this.o.now();
    if (entry) {
      this.cache.delete(netns);
      this.cache.set(netns, entry);
      entry.lookedAt = now;
      this.scheduleRecheck();
      if (this.fresh(entry, now)) return entry.found.workload;
      // Not confirmed lately (no lookup kept it checked): three cheap reads now, rather than an interval unnamed.
      if (this.stillSameNow(netns, entry.found)) {
        entry.checkedAt = now;
        return entry.found.workload;
      }
      this.cache.delete(netns);
      this.wanted.add(netns);
      this.requestScan();
      return unknown(netns);
    }
    if ((this.misses.get(netns) ?? -Infinity) <= now) {
      this.wanted.add(netns);
      this.requestScan();
    }
    return unknown(netns);
  }

  cgroup(id: number): CgroupWorkload {
    return this.o.cgroups?.lookup(id) ?? unknownCgroup(id);
  }

  private fresh(entry: Entry, now: number): boolean {
    return isHost(entry.found) || now - entry.checkedAt <= this.maxAgeMs;
  }

  close(): void {
    this.closed = true;
    this.o.cgroups?.close();
    if (this.scanTimer !== null) this.o.timers.clearTimeout(this.scanTimer);
    if (this.recheckTimer !== null) this.o.timers.clearTimeout(this.recheckTimer);
    this.scanTimer = this.recheckTimer = null;
  }

  /** Namespaces held in the cache. */
  get size(): number {
    return this.cache.size;
  }

  /** Resolves once no scan or re-check is running (tests; the timers may start more later). */
  async settled(): Promise<void> {
    while (this.scanning || this.rechecking) await (this.scanning ?? this.rechecking);
    await this.o.cgroups?.settled?.();
  }

  private requestScan(): void {
    if (this.closed || this.scanning || this.scanTimer !== null) return;
    // On a node with many processes a scan is not free: the next waits ten times as long as the last one took.
    const spacing = Math.max(this.o.scanIntervalMs, this.lastScanCost * SCAN_SHARE);
    const wait = Math.max(0, this.lastScan + spacing - this.o.now());
    this.scanTimer = this.o.timers.setTimeout(() => {
      this.scanTimer = null;
      this.scanning = this.scan().finally(() => {
        this.scanning = null;
        // Inodes asked for during the scan that it did not name ask again (rate-limited).
        if ([...this.wanted].some((ino) => !this.cache.has(ino))) this.requestScan();
      });
    }, wait);
  }

  private async scan(): Promise<void> {
    const started = (this.lastScan = this.o.now());
    const wanted = this.wanted;
    this.wanted = new Set();
    const namer = new ContainerNamer(this.o.files, this.containers);
    const result = await attempt(() => scanNamespaces(this.o.files, namer));
    this.lastScanCost = this.o.now() - started;
    trim(this.containers, this.o.maxNamespaces);
    if (result === null) return;
    this.merge(result.found, wanted, started);
  }

  /** A scan is the whole truth: entries it did not find are gone; what was asked for is kept before the rest. */
  private merge(found: Map<number, Found>, wanted: Set<number>, started: number): void {
    const old = new Map(this.cache);
    this.cache.clear();
    const put = (ino: number): void => {
      const f = found.get(ino);
      if (f && !this.cache.has(ino))
        this.cache.set(ino, { found: f, checkedAt: started, lookedAt: old.get(ino)?.lookedAt ?? -Infinity });
    };
    for (const ino of found.keys()) if (!old.has(ino) && !wanted.has(ino)) put(ino);
    for (const ino of old.keys()) put(ino);
    for (const ino of wanted) {
      put(ino);
      if (!found.has(ino)) this.misses.set(ino, started + this.o.retryMs);
    }
    trim(this.cache, this.o.maxNamespaces);
    trim(this.misses, this.o.maxNamespaces);
  }

  private scheduleRecheck(): void {
    if (this.closed || this.recheckTimer !== null || this.rechecking) return;
    this.recheckTimer = this.o.timers.setTimeout(() => {
      this.recheckTimer = null;
      this.rechecking = this.recheck().finally(() => {
        this.rechecking = null;
        const active = this.o.now() - this.o.recheckMs * ACTIVE_PERIODS;
        if ([...this.cache.values()].some((e) => e.lookedAt >= active)) this.scheduleRecheck();
      });
    }, this.o.recheckMs);
  }

  private async recheck(): Promise<void> {
    const started = this.o.now();
    const active = started - this.o.recheckMs * ACTIVE_PERIODS;
    const due = [...this.cache].filter(([, e]) => e.lookedAt >= active);
    await eachLimited(due, 16, async ([ino, entry]) => {
      if (await this.stillSame(ino, entry.found)) {
        entry.checkedAt = Math.max(entry.checkedAt, started);
      } else if (this.cache.get(ino) === entry) {
        this.cache.delete(ino);
        this.wanted.add(ino);
        this.requestScan();
      }
    });
  }

  /** stillSame's reads, made at once. */
  private stillSameNow(ino: number, found: Found): boolean {
    const files = this.o.files;
    if (found.netnsFile !== null && attemptNow(() => files.now.inode(found.netnsFile!)) !== ino) return false;
    const w = found.witness;
    if (w === null) return found.netnsFile !== null;
    const seen = witnessNow(files, w.pid);
    return seen.netns === ino && seen.start === w.start;
  }

  /** Cheap: one link and one stat line for the witness, one stat for the ip-netns file. */
  private async stillSame(ino: number, found: Found): Promise<boolean> {
    const files = this.o.files;
    if (isHost(found)) return true;
    if (found.netnsFile !== null && (await attempt(() => files.inode(found.netnsFile!))) !== ino) return false;
    const w = found.witness;
    if (w === null) return found.netnsFile !== null;
    return (await netnsOf(files, w.pid)) === ino && (await startOf(files, w.pid)) === w.start;
  }
}

/** The host's namespace lives as long as the node: its inode is never another's, so it needs no re-check. */
function isHost(found: Found): boolean {
  return found.workload.netnsName === 'host';
}

/** Drops the oldest entries of an insertion-ordered map past `max`. */
function trim<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) break;
    map.delete(key);
  }
}
