// The live view's counts, pure: one site per drop location, its last minute second by second, totals and losses;
// and the same drops by device and by reason for the grouped rows (src/top/groups.ts).
import type { DropPlace, Origin, StackSamples } from '../backend/types.js';
import type { WorkloadNames } from '../workload/types.js';
import {
  GroupTable,
  NOWHERE,
  deviceLabel,
  mergeDevices,
  placeKey,
  type CellDrop,
  type Group,
  type Grouping,
} from './groups.js';

/** Seconds of history each site keeps (the sparkline's length). */
export const HISTORY = 60;
/** Sites kept at once, the aggregator's own cap: a storm of distinct addresses cannot grow the view without bound. */
export const DEFAULT_MAX_SITES = 4096;

export type SortKey = 'rate' | 'total' | 'name';
export const SORT_KEYS: readonly SortKey[] = ['rate', 'total', 'name'];

/** Drops at one place: an aggregated summary line, or one packet-mode drop with count 1. */
export interface SiteDrop {
  origin: Origin;
  pc: bigint;
  trap?: string | undefined;
  reason: string | null;
  count: number;
  /** The kernel's own `%pS` text (NET_DM packet alerts), used when the address does not resolve. */
  symbol?: string | undefined;
  /** Call chains sampled from these drops (stacks on). */
  stacks?: StackSamples | undefined;
  /** Where they happened (namespace and device), where the source says; their counts add up to `count`. */
  places?: readonly DropPlace[] | undefined;
}

/** One call chain of a site, named once when first seen, and how many sampled drops took it since the view opened. */
export interface ChainCount {
  readonly text: string;
  total: number;
}

/** Distinct chains kept per site; samples of further chains still count in `sampled`. */
export const MAX_CHAINS = 32;

export interface ReasonCount {
  total: number;
  /** Drops in the last completed interval. */
  last: number;
  pending: number;
}

/** What a row of the view shows, for a site and for a group alike. */
export interface Row {
  readonly key: string;
  readonly label: string;
  total: number;
  last: number;
  readonly history: Float64Array;
  readonly reasons: ReadonlyMap<string | null, { total: number; last: number }>;
}

export interface Site extends Row {
  readonly key: string;
  readonly origin: Origin;
  readonly pc: bigint;
  readonly trap: string | undefined;
  /** What the location column shows: `sym+off [module]`, an address, or the trap name; fixed when the site is made. */
  readonly label: string;
  total: number;
  /** Drops in the last completed interval. */
  last: number;
  /** Drops in the interval still open. */
  pending: number;
  /** Drops per interval, a ring indexed by the model's tick modulo HISTORY. */
  readonly history: Float64Array;
  /** By reason name; null is "the source did not say". */
  readonly reasons: Map<string | null, ReasonCount>;
  /** The tick in which it last dropped anything. */
  lastActiveTick: number;
  /** Call chains by their frames, and how many drops were sampled for them in all. */
  readonly chains: Map<string, ChainCount>;
  sampled: number;
}

export interface ModelOptions {
  /** Makes a site's location label once, when the site first appears. */
  label: (drop: SiteDrop) => string;
  /** Names a call chain once, when it first appears (`a+1 < b+2 < …`); chains are not kept without it. */
  chainLabel?: (frames: readonly bigint[]) => string;
  maxSites?: number;
  /** Length of one interval, so counts per interval become rates per second. */
  intervalMs?: number;
  /** Counts by device and by reason too, for the grouped rows (default true); false where no grouping is offered. */
  groups?: boolean;
}

export function siteKey(d: Pick<SiteDrop, 'origin' | 'pc' | 'trap'>): string {
  return `${d.origin}\0${d.pc.toString(16)}\0${d.trap ?? ''}`;
}

export class TopModel {
  readonly maxSites: number;
  readonly intervalMs: number;
  private readonly label: (drop: SiteDrop) => string;
  private readonly chainLabel: ((frames: readonly bigint[]) => string) | undefined;
  private sites = new Map<string, Site>();
  /** By device (in its namespace) and by reason; null when grouping is not offered. */
  private groups: { device: GroupTable; reason: GroupTable } | null;
  /** Completed intervals. */
  ticks = 0;
  total = 0;
  /** Drops in the last completed interval, every site and the overflow together. */
  last = 0;
  private pending = 0;
  /** Drops at sites that did not fit: the session's aggregator overflow and our own cap. */
  overflowTotal = 0;
  overflowLast = 0;
  private overflowPending = 0;
  lostTotal = 0;
  /** Where the latest loss happened (e.g. "tracefs ring buffer cpu1"). */
  lostWhere: string | null = null;

  constructor(options: ModelOptions) {
    this.label = options.label;
    this.chainLabel = options.chainLabel;
    this.maxSites = options.maxSites ?? DEFAULT_MAX_SITES;
    this.intervalMs = options.intervalMs ?? 1000;
    this.groups =
      options.groups === false
        ? null
        : { device: new GroupTable(this.maxSites, HISTORY), reason: new GroupTable(this.maxSites, HISTORY) };
  }

  get size(): number {
    return this.sites.size;
  }

  /** Counts drops into the interval still open. */
  add(drops: readonly SiteDrop[]): void {
    for (const d of drops) {
      if (d.count === 0) continue;
      const key = siteKey(d);
      let site = this.sites.get(key);
      if (!site && this.sites.size < this.maxSites) {
        site = {
          key,
          origin: d.origin,
          pc: d.pc,
          trap: d.trap,
          label: this.label(d),
          total: 0,
          last: 0,
          pending: 0,
          history: new Float64Array(HISTORY),
          reasons: new Map(),
          lastActiveTick: this.ticks,
          chains: new Map(),
          sampled: 0,
        };
        this.sites.set(key, site);
      }
      // Groups count drops at sites over the cap too: a group's row adds up to all its drops.
      if (this.groups) this.addGroups(d, key, site);
      if (!site) {
        this.addOverflow(d.count);
        continue;
      }
      site.pending += d.count;
      site.total += d.count;
      site.lastActiveTick = this.ticks;
      if (d.stacks) this.addChains(site, d.stacks);
      let reason = site.reasons.get(d.reason);
      if (!reason) site.reasons.set(d.reason, (reason = { total: 0, last: 0, pending: 0 }));
      reason.pending += d.count;
      reason.total += d.count;
      this.pending += d.count;
      this.total += d.count;
    }
  }

  /** Counts a drop by reason and by each device it happened on; what its places leave out, under no device. */
  private addGroups(d: SiteDrop, key: string, site: Site | undefined): void {
    const { reason } = this.groups!;
    const cell: CellDrop = { site: key, label: () => site?.label ?? this.label(d), reason: d.reason };
    const why = d.reason ?? '(no reason given)';
    reason.add(
      `reason\0${d.reason ?? '\u0001'}`,
      () => ({ label: why, netns: [], place: null }),
      cell,
      d.count,
      this.ticks,
    );
    let placed = 0;
    for (const p of d.places ?? []) {
      if (p.count <= 0) continue;
      placed += p.count;
      this.addDevice(p, cell, p.count);
    }
    if (placed < d.count) this.addDevice(NOWHERE, cell, d.count - placed);
  }

  private addDevice(p: Pick<DropPlace, 'netns' | 'ifindex' | 'ifname'>, cell: CellDrop, count: number): void {
    const place = { netns: p.netns, ifindex: p.ifindex, ifname: p.ifname };
    const make = () => ({ label: deviceLabel(place, `netns ${p.netns}`), netns: [p.netns], place });
    this.groups!.device.add(placeKey(place), make, cell, count, this.ticks);
  }

  private addChains(site: Site, stacks: StackSamples): void {
    site.sampled += stacks.sampled;
    if (!this.chainLabel) return;
    for (const chain of stacks.chains) {
      const key = chain.frames.join(',');
      const known = site.chains.get(key);
      if (known) known.total += chain.count;
      else if (site.chains.size < MAX_CHAINS)
        site.chains.set(key, { text: this.chainLabel(chain.frames), total: chain.count });
    }
  }

  /** Drops counted but not placed at a site (over a cap). */
  addOverflow(count: number): void {
    this.overflowPending += count;
    this.overflowTotal += count;
    this.pending += count;
    this.total += count;
  }

  lost(count: number, where: string): void {
    this.lostTotal += count;
    this.lostWhere = where;
  }

  /** Closes the open interval: its counts become each site's latest second and the newest history slot. */
  tick(): void {
    const slot = this.ticks % HISTORY;
    for (const site of this.sites.values()) {
      site.history[slot] = site.pending;
      site.last = site.pending;
      site.pending = 0;
      for (const r of site.reasons.values()) {
        r.last = r.pending;
        r.pending = 0;
      }
    }
    this.last = this.pending;
    this.pending = 0;
    this.overflowLast = this.overflowPending;
    this.overflowPending = 0;
    this.groups?.device.tick(this.ticks);
    this.groups?.reason.tick(this.ticks);
    this.ticks++;
    // Room for new sites: when full, those quiet for the whole window leave (their drops stay in the totals).
    if (this.sites.size >= this.maxSites)
      for (const [key, site] of this.sites) if (this.ticks - 1 - site.lastActiveTick >= HISTORY) this.sites.delete(key);
  }

  /** Drops per second over the last completed interval. */
  rate(count: number): number {
    return (count * 1000) / this.intervalMs;
  }

  /** Average drops per second since the view started. */
  averageRate(): number {
    return this.ticks === 0 ? 0 : (this.total * 1000) / (this.ticks * this.intervalMs);
  }

  get(key: string): Site | undefined {
    return this.sites.get(key);
  }

  /** Every site, sorted: by the last second's rate, by total, or by location name. */
  rows(sort: SortKey): Site[] {
    const rows = [...this.sites.values()];
    rows.sort(COMPARE[sort]);
    return rows;
  }

  /**
   * The rows of a grouping, sorted: each device, namespace, workload (named now through `names`) or reason, with
   * its sites. Empty when the model does not count groups.
   */
  groupRows(by: Grouping, sort: SortKey, names: WorkloadNames | null = null): Group[] {
    if (!this.groups) return [];
    const rows =
      by === 'reason' ? [...this.groups.reason.values()] : mergeDevices(this.groups.device.values(), by, names);
    rows.sort(COMPARE[sort]);
    return rows;
  }

  /** Drops not in any row of the grouping: their group did not fit under the cap. */
  groupOverflow(by: Grouping): number {
    return (by === 'reason' ? this.groups?.reason : this.groups?.device)?.overflow ?? 0;
  }

  /** The last `width` seconds of a row, oldest first. */
  recent(site: Pick<Row, 'history'>, width: number): number[] {
    const n = Math.min(width, HISTORY, this.ticks);
    const out: number[] = [];
    for (let t = this.ticks - n; t < this.ticks; t++) out.push(site.history[t % HISTORY]!);
    return out;
  }

  /** A deep copy: what a paused view keeps showing while counting goes on. */
  clone(): TopModel {
    const copy = new TopModel({
      label: this.label,
      ...(this.chainLabel ? { chainLabel: this.chainLabel } : {}),
      maxSites: this.maxSites,
      intervalMs: this.intervalMs,
      groups: false,
    });
    copy.groups = this.groups && { device: this.groups.device.clone(), reason: this.groups.reason.clone() };
    for (const [key, s] of this.sites)
      copy.sites.set(key, {
        ...s,
        history: s.history.slice(),
        reasons: new Map([...s.reasons].map(([r, c]) => [r, { ...c }])),
        chains: new Map([...s.chains].map(([k, c]) => [k, { ...c }])),
      });
    copy.ticks = this.ticks;
    copy.total = this.total;
    copy.last = this.last;
    copy.pending = this.pending;
    copy.overflowTotal = this.overflowTotal;
    copy.overflowLast = this.overflowLast;
    copy.overflowPending = this.overflowPending;
    copy.lostTotal = this.lostTotal;
    copy.lostWhere = this.lostWhere;
    return copy;
  }
}

type Sortable = Pick<Row, 'key' | 'label' | 'total' | 'last'>;
const byName = (a: Sortable, b: Sortable): number => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
// Ties end on the key, so equal rows keep one order from frame to frame instead of trading places.
const byKey = (a: Sortable, b: Sortable): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

const COMPARE: Record<SortKey, (a: Sortable, b: Sortable) => number> = {
  rate: (a, b) => b.last - a.last || b.total - a.total || byName(a, b) || byKey(a, b),
  total: (a, b) => b.total - a.total || b.last - a.last || byName(a, b) || byKey(a, b),
  name: (a, b) => byName(a, b) || b.total - a.total || byKey(a, b),
};

/** The reason a row shows: the one with most drops last second, else most in total. */
export function mainReason(site: Pick<Row, 'reasons'>): string | null {
  let best: [string | null, { total: number; last: number }] | null = null;
  for (const entry of site.reasons) {
    const [, c] = entry;
    if (!best || c.last > best[1].last || (c.last === best[1].last && c.total > best[1].total)) best = entry;
  }
  return best ? best[0] : null;
}
