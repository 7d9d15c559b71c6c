// The live view's counts by workload, pure: drops by device (in its namespace) and by reason, each group with its
// drop sites, and the rows by namespace or container/pod merged from the devices through the workload names.
import type { DropPlace } from '../backend/types.js';
import type { Workload, WorkloadNames } from '../workload/types.js';

/** What a row of the view stands for. */
export type GroupBy = 'location' | 'workload' | 'netns' | 'device' | 'reason';
/** The order `g` goes through them. */
export const GROUPINGS: readonly GroupBy[] = ['location', 'workload', 'netns', 'device', 'reason'];
export type Grouping = Exclude<GroupBy, 'location'>;

/** Distinct (site, reason) pairs kept per group; drops at further ones are summed in `other`. */
export const MAX_CELLS = 32;

export interface Tally {
  total: number;
  /** Drops in the last completed interval. */
  last: number;
  pending: number;
}

/** Drops of one group at one site, for one reason. */
export interface Cell extends Tally {
  readonly key: string;
  /** The site's key (src/top/model.ts siteKey) and location label. */
  readonly site: string;
  readonly label: string;
  readonly reason: string | null;
}

/** One row of a grouped view: its counts, its last minute, its reasons, and its sites. */
export interface Group extends Tally {
  readonly key: string;
  readonly label: string;
  /** Drops per interval, a ring indexed by the model's tick modulo the history's length. */
  readonly history: Float64Array;
  readonly reasons: Map<string | null, Tally>;
  readonly cells: Map<string, Cell>;
  /** Drops at cells over MAX_CELLS. */
  readonly other: Tally;
  /** The namespaces its drops happened in (null: no device or socket), fewest first for a short header. */
  readonly netns: readonly (number | null)[];
  /** The device, for a group of one device. */
  readonly place: Readonly<Pick<DropPlace, 'netns' | 'ifindex' | 'ifname'>> | null;
  /** The tick in which it last dropped anything. */
  lastActiveTick: number;
}

/** What one counted drop brings to a group: the site it happened at and its reason. */
export interface CellDrop {
  site: string;
  /** The site's label, asked for only when a new cell is made. */
  label: () => string;
  reason: string | null;
}

const tally = (): Tally => ({ total: 0, last: 0, pending: 0 });
const addTo = (t: Tally, count: number): void => {
  t.pending += count;
  t.total += count;
};
const close = (t: Tally): void => {
  t.last = t.pending;
  t.pending = 0;
};

/** Groups under one key each, at most `max` of them: the site cap, so a storm of namespaces cannot grow the view. */
export class GroupTable {
  private groups = new Map<string, Group>();
  /** Drops of groups that did not fit. */
  overflow = 0;

  constructor(
    private readonly max: number,
    private readonly historyLength: number,
  ) {}

  get size(): number {
    return this.groups.size;
  }

  values(): IterableIterator<Group> {
    return this.groups.values();
  }

  /** Counts `count` drops into the group under `key`, made by `make` if new, or over the cap when it does not fit. */
  add(key: string, make: () => GroupIdentity, drop: CellDrop, count: number, tick: number): void {
    let group = this.groups.get(key);
    if (!group) {
      if (this.groups.size >= this.max) {
        this.overflow += count;
        return;
      }
      group = emptyGroup(key, make(), this.historyLength, tick);
      this.groups.set(key, group);
    }
    addTo(group, count);
    group.lastActiveTick = tick;
    let reason = group.reasons.get(drop.reason);
    if (!reason) group.reasons.set(drop.reason, (reason = tally()));
    addTo(reason, count);
    const cellKey = `${drop.site}\0${drop.reason ?? '\u0001'}`;
    let cell = group.cells.get(cellKey);
    if (!cell && group.cells.size < MAX_CELLS)
      group.cells.set(
        cellKey,
        (cell = { key: cellKey, site: drop.site, label: drop.label(), reason: drop.reason, ...tally() }),
      );
    addTo(cell ?? group.other, count);
  }

  /** Closes the interval `tick`; when full, groups quiet for the whole window leave (their drops stay in totals). */
  tick(tick: number): void {
    const slot = tick % this.historyLength;
    for (const group of this.groups.values()) {
      group.history[slot] = group.pending;
      close(group);
      for (const r of group.reasons.values()) close(r);
      for (const c of group.cells.values()) close(c);
      close(group.other);
    }
    if (this.groups.size >= this.max)
      for (const [key, g] of this.groups) if (tick - g.lastActiveTick >= this.historyLength) this.groups.delete(key);
  }

  clone(): GroupTable {
    const copy = new GroupTable(this.max, this.historyLength);
    copy.overflow = this.overflow;
    for (const [key, g] of this.groups) copy.groups.set(key, copyOf(g));
    return copy;
  }
}

/** What a group is, as opposed to what it counted. */
export type GroupIdentity = Pick<Group, 'label' | 'netns' | 'place'>;

function emptyGroup(key: string, what: GroupIdentity, length: number, tick: number): Group {
  return {
    key,
    ...what,
    ...tally(),
    history: new Float64Array(length),
    reasons: new Map(),
    cells: new Map(),
    other: tally(),
    lastActiveTick: tick,
  };
}

/** The device table's key for a place: a device belongs to one namespace, so two `eth0`s are two devices. */
export const placeKey = (p: Pick<DropPlace, 'netns' | 'ifindex' | 'ifname'>): string =>
  `device\0${p.netns ?? ''}\0${p.ifindex ?? ''}\0${p.ifname ?? ''}`;

/** `host` or the `ip netns` name where known, else `netns <inode>`. */
export function netnsLabel(netns: number | null, w: Workload | null): string {
  if (netns === null) return '(no namespace)';
  return w?.netnsName ?? `netns ${netns}`;
}

/** `pod ns/name` where known, else the container's name or short ID, else the namespace's label. */
export function workloadLabel(netns: number | null, w: Workload | null): string {
  if (w?.pod) return `pod ${w.pod}`;
  if (w?.containerName) return `container ${w.containerName}`;
  if (w?.container) return `container ${w.container.slice(0, 12)}`;
  return netnsLabel(netns, w);
}

/** The device's name, else its index, else `(no device)`; then the namespace it is in, where known. */
export function deviceLabel(place: Pick<DropPlace, 'netns' | 'ifindex' | 'ifname'>, nsLabel: string): string {
  const dev = place.ifname ?? (place.ifindex === null ? '(no device)' : `ifindex ${place.ifindex}`);
  return place.netns === null ? dev : `${dev} in ${nsLabel}`;
}

/**
 * The rows of a grouping made from the device groups: one per device, namespace, or workload as the names say now
 * (so a name found later renames or merges rows). Names are asked for each namespace once per call, never waited on.
 */
export function mergeDevices(
  devices: Iterable<Group>,
  by: 'device' | 'netns' | 'workload',
  names: WorkloadNames | null,
): Group[] {
  const known = new Map<number, Workload | null>();
  const workload = (netns: number | null): Workload | null => {
    if (netns === null || !names) return null;
    if (!known.has(netns)) known.set(netns, names.lookup(netns));
    return known.get(netns)!;
  };
  const rows = new Map<string, Group>();
  for (const d of devices) {
    const netns = d.place?.netns ?? null;
    const [key, label] = rowOf(d, by, netns, workload(netns));
    const row = rows.get(key);
    if (row) rows.set(key, merged(row, d));
    else rows.set(key, { ...copyOf(d), key, label, place: by === 'device' ? d.place : null });
  }
  return [...rows.values()];
}

/** The key and label of the row a device's drops go to. */
function rowOf(d: Group, by: 'device' | 'netns' | 'workload', netns: number | null, w: Workload | null) {
  const ns = netnsLabel(netns, w);
  if (by === 'device') return [d.key, deviceLabel(d.place ?? NOWHERE, ns)] as const;
  if (by === 'netns') return [`netns\0${netns ?? ''}`, ns] as const;
  const label = workloadLabel(netns, w);
  return [`workload\0${label}`, label] as const;
}

/** The place of drops with no device and no socket. */
export const NOWHERE: Readonly<Pick<DropPlace, 'netns' | 'ifindex' | 'ifname'>> = {
  netns: null,
  ifindex: null,
  ifname: null,
};

/** A deep copy: merging and pausing change copies, never the counts themselves. */
function copyOf(g: Group): Group {
  return {
    ...g,
    history: g.history.slice(),
    reasons: new Map([...g.reasons].map(([r, t]) => [r, { ...t }])),
    cells: new Map([...g.cells].map(([k, c]) => [k, { ...c }])),
    other: { ...g.other },
  };
}

/** `into` (a copy, so it may change) with `more`'s counts added; cells over the cap go to `other`. */
function merged(into: Group, more: Group): Group {
  const sum = (a: Tally, b: Tally) => {
    a.total += b.total;
    a.last += b.last;
    a.pending += b.pending;
  };
  sum(into, more);
  sum(into.other, more.other);
  for (let i = 0; i < into.history.length; i++) into.history[i]! += more.history[i]!;
  for (const [r, t] of more.reasons) {
    const mine = into.reasons.get(r);
    if (mine) sum(mine, t);
    else into.reasons.set(r, { ...t });
  }
  for (const [k, c] of more.cells) {
    const mine = into.cells.get(k);
    if (mine) sum(mine, c);
    else if (into.cells.size < MAX_CELLS) into.cells.set(k, { ...c });
    else sum(into.other, c);
  }
  const netns = into.netns.includes(more.netns[0] ?? null) ? into.netns : [...into.netns, ...more.netns];
  return { ...into, netns, lastActiveTick: Math.max(into.lastActiveTick, more.lastActiveTick) };
}
