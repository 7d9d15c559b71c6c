// Summary lines grouped by the keys of --by and `set by`: the aggregator's per-location lines regrouped over their
// places (namespace, device, task), each drop in exactly one line or the overflow, the number of lines bounded.
import type { DropPlace, PacketDrop, SummaryEntry } from '../backend/types.js';
import type { ByKey } from './keys.js';
import type { CgroupWorkload, Workload } from '../workload/types.js';
import { withTaskCgroup } from '../workload/task.js';
import type { Overflow } from './index.js';

/** A namespace as a line names it: its inode (null: the drop had none) and its name, once known. */
export interface NetnsValue {
  inode: number | null;
  name: string | null;
}

/**
 * The values one grouped line stands for. `netns` is there when asked for, or in place of a container or pod that
 * is not known (yet) when it is not; `null` values mean the drops had none.
 */
export interface GroupValues {
  netns?: NetnsValue;
  container?: { id: string; name: string | null } | null;
  pod?: string | null;
  dev?: { ifindex: number | null; ifname: string | null };
  comm?: string | null;
}

/** What a grouped line is grouped by, for its words (output/format.ts). */
export interface LineGroup {
  keys: readonly ByKey[];
  values: GroupValues;
}

/** A summary line: dropwatch's per-location entry, or a grouped one (location and reason only where keyed). */
export type SummaryLine = SummaryEntry & { group?: LineGroup };

/** Drops that did not fit under the bound, as the aggregator's overflow but counting grouped lines. */
export type GroupOverflow = Overflow & { grouped: true };

export interface GroupResult {
  lines: SummaryLine[];
  overflow: GroupOverflow | null;
}

/** Names of a namespace, null where the run resolves none. */
export type NamesLookup = ((netns: number) => Workload) | null;
/** A task's cgroup by its v2 id, null where the run resolves none. */
export type CgroupLookup = ((id: number) => CgroupWorkload) | null;

const NONE = '\u0001';

/** The values and the key of the group one place's drops fall in. */
function valuesOf(
  entry: SummaryEntry,
  place: DropPlace | null,
  keys: ReadonlySet<ByKey>,
  whose: (place: DropPlace | null) => Workload | null,
) {
  const parts: string[] = [];
  const values: GroupValues = {};
  if (keys.has('location'))
    parts.push(`${entry.origin}\0${entry.pc.toString(16)}\0${entry.trap ?? NONE}\0${entry.reason ?? NONE}`);
  else if (keys.has('reason')) parts.push(entry.reason ?? NONE);
  const inode = place?.netns ?? null;
  const w = whose(place);
  let standIn = false;
  if (keys.has('pod')) {
    values.pod = w?.pod ?? null;
    parts.push(values.pod ?? NONE);
    standIn ||= values.pod === null;
  }
  if (keys.has('container')) {
    values.container = w?.container ? { id: w.container, name: w.containerName } : null;
    parts.push(values.container?.id ?? NONE);
    standIn ||= values.container === null;
  }
  if (keys.has('netns') || standIn) {
    values.netns = { inode, name: w?.netnsName ?? null };
    parts.push(String(inode ?? NONE));
  }
  if (keys.has('dev')) {
    values.dev = { ifindex: place?.ifindex ?? null, ifname: place?.ifname ?? null };
    parts.push(values.dev.ifname ?? (values.dev.ifindex === null ? NONE : `#${values.dev.ifindex}`));
  }
  if (keys.has('comm')) {
    values.comm = place?.comm ?? null;
    parts.push(values.comm ?? NONE);
  }
  return { key: parts.join('\0\0'), values };
}

/** The line a group starts as: the location where it is keyed, the reason where that is. */
function lineFor(entry: SummaryEntry, keys: readonly ByKey[], values: GroupValues): SummaryLine {
  const line: SummaryLine = keys.includes('location')
    ? { origin: entry.origin, pc: entry.pc, reason: entry.reason, count: 0, group: { keys, values } }
    : {
        origin: 'software',
        pc: 0n,
        reason: keys.includes('reason') ? entry.reason : null,
        count: 0,
        group: { keys, values },
      };
  if (keys.includes('location') && entry.trap !== undefined) line.trap = entry.trap;
  return line;
}

/** A place's workload: its namespace's names, or its task's cgroup's container where those name none. */
function workloadsOf(lookup: NamesLookup, cgroups: CgroupLookup): (place: DropPlace | null) => Workload | null {
  const seen = new Map<number, Workload | null>();
  const named = (n: number): Workload | null => {
    if (!seen.has(n)) seen.set(n, lookup === null ? null : lookup(n));
    return seen.get(n)!;
  };
  const tasks = new Map<number, CgroupWorkload | null>();
  const task = (id: number): CgroupWorkload | null => {
    if (!tasks.has(id)) tasks.set(id, cgroups === null ? null : cgroups(id));
    return tasks.get(id)!;
  };
  return (place) => {
    const inode = place?.netns ?? null;
    const w = inode === null ? null : named(inode);
    const t = place?.cgroup === undefined || place.cgroup === null ? null : task(place.cgroup);
    if (t === null) return w;
    const none = { netns: inode ?? 0, netnsName: null, container: null, containerName: null, pod: null, podUid: null };
    const merged = withTaskCgroup(w ?? none, t);
    return merged === none ? null : merged;
  };
}

/**
 * Regroups one interval's per-location lines by `keys`, splitting each over its places (drops the places do not
 * account for fall in a place with no namespace, device or task). Names come from `lookup` once per namespace (and
 * from `cgroups` once per task cgroup, for a namespace that names no container); the first `maxLines` groups are
 * kept, the drops of the rest are one overflow.
 */
export function groupLines(
  entries: readonly SummaryEntry[],
  keys: readonly ByKey[],
  lookup: NamesLookup,
  maxLines: number,
  cgroups: CgroupLookup = null,
): GroupResult {
  const keySet = new Set(keys);
  const whose = workloadsOf(lookup, cgroups);
  const groups = new Map<string, SummaryLine>();
  const over = new OverflowTally(maxLines);
  for (const entry of entries) {
    const shares = sharesOf(entry);
    let single: SummaryLine | null | undefined;
    for (const [place, count] of shares) {
      const { key, values } = valuesOf(entry, place, keySet, whose);
      let line = groups.get(key);
      if (line === undefined && groups.size < maxLines) groups.set(key, (line = lineFor(entry, keys, values)));
      if (line === undefined) over.add(key, count);
      else line.count += count;
      single = single === undefined || single === line ? (line ?? null) : null;
    }
    // Call chains belong to a location: they stay only on a line that holds the whole of it.
    if (entry.stacks && keySet.has('location') && single) single.stacks = entry.stacks;
  }
  return { lines: [...groups.values()].filter((l) => l.count > 0), overflow: over.result() };
}

/** An entry's drops by place; what its places do not account for is a share with no place. */
function sharesOf(entry: SummaryEntry): [DropPlace | null, number][] {
  const places = entry.places ?? [];
  const shares: [DropPlace | null, number][] = places.map((p) => [p, p.count]);
  const rest = entry.count - places.reduce((sum, p) => sum + p.count, 0);
  if (rest > 0 || shares.length === 0) shares.push([null, Math.max(rest, 0)]);
  return shares;
}

/** Drops of groups past the bound, and how many groups (counted up to the bound again, then a lower bound). */
class OverflowTally {
  private drops = 0;
  private readonly keys = new Set<string>();
  private capped = false;
  constructor(private readonly limit: number) {}

  add(key: string, count: number): void {
    this.drops += count;
    if (this.keys.size < this.limit) this.keys.add(key);
    else if (!this.keys.has(key)) this.capped = true;
  }

  result(): GroupOverflow | null {
    if (this.keys.size === 0) return null;
    return {
      drops: this.drops,
      distinct: this.keys.size,
      distinctIsLowerBound: this.capped,
      limit: this.limit,
      grouped: true,
    };
  }
}

/**
 * A packet as a count of one, so packet mode can be grouped too: its place is its namespace, its device (NET_DM's
 * input port, where that is all a source says) and its task.
 */
export function packetEntry(p: PacketDrop): SummaryEntry {
  const place: DropPlace = {
    netns: p.netns ?? null,
    ifindex: p.inPort?.ifindex ?? null,
    ifname: p.inPort?.name ?? null,
    ...(p.pid === undefined ? {} : { pid: p.pid, comm: p.comm ?? null }),
    ...(p.cgroup === undefined ? {} : { cgroup: p.cgroup }),
    count: 1,
  };
  return {
    origin: p.origin,
    pc: p.pc ?? 0n,
    ...(p.trapName === undefined ? {} : { trap: p.trapName }),
    reason: p.reason ?? null,
    count: 1,
    places: [place],
  };
}
