// JSON Lines output: one object per drop report, loss or overflow, as schema/dropwatch-event.schema.json describes.

import type { BackendName, DropPlace, Origin, PacketDrop, StackSamples, SummaryEntry } from '../backend/types.js';
import type { FrameResolver } from './format.js';
import type { Overflow } from '../aggregate/index.js';
import type { Resolved } from '../symbols/kallsyms.js';
import type { Flow } from '../packet/index.js';
import type { CgroupWorkload } from '../workload/types.js';
import type { CgroupLookup, NamesLookup } from '../aggregate/group.js';
import { withTaskCgroup } from '../workload/task.js';

/** Fields every drop report carries, summary or packet. */
interface DropFields {
  /** ISO 8601 UTC: when the report was made (summary), or when the packet was dropped if the source says. */
  time: string;
  backend: BackendName;
  origin: Origin;
  count: number;
  /** `0x…` lower-case hex kernel address; "0x0" for hardware traps and the device rx_dropped counter; null if none. */
  pc: string | null;
  symbol: string | null;
  /** Bytes from the start of `symbol` (a number: offsets are small and tools add them without parsing). */
  offset: number | null;
  module: string | null;
  trap: string | null;
  reason: string | null;
}

/** One return address of a call chain, named like a drop location. */
export interface FrameJson {
  pc: string;
  symbol: string | null;
  offset: number | null;
  module: string | null;
}

export interface SummaryJson extends DropFields {
  type: 'summary';
  /** Only when stacks are on: the chains sampled from these drops, most frequent first. */
  stacks?: { sampled: number; chains: { count: number; frames: FrameJson[] }[] };
  /** Only where the source knows them (bpf): per network namespace and device, counts adding up to `count`. */
  places?: PlaceJson[];
}

/** The names found for a network namespace, null where none is known (or the drop had no namespace). */
interface WorkloadJson {
  netns: number | null;
  /** `host` for the host's namespace, else its `ip netns` name. */
  netnsName: string | null;
  container: string | null;
  containerName: string | null;
  /** `namespace/name`. */
  pod: string | null;
  podUid: string | null;
}

/** Drops at one location in one namespace, on one device (and in one task, where the source says). */
export interface PlaceJson extends WorkloadJson {
  ifindex: number | null;
  ifname: string | null;
  pid?: number | null;
  comm?: string | null;
  /** The task's cgroup v2 id and its path in the unified hierarchy (null until found), where the source gives one. */
  cgroupId?: number | null;
  cgroup?: string | null;
  count: number;
}

export interface PacketJson extends DropFields, WorkloadJson {
  type: 'packet';
  count: 1;
  trapGroup: string | null;
  ifindex: number | null;
  ifname: string | null;
  /** The flow decoded from the payload (src/packet); null when there is no payload or it does not get that far. */
  l3: Flow['l3'];
  src: string | null;
  dst: string | null;
  l4: string | null;
  sport: number | null;
  dport: number | null;
  /** Hex, as dropwatch prints it. */
  cookie: string | null;
  /** EtherType. */
  protocol: number | null;
  /** Captured payload bytes, and the packet's length before truncation. */
  length: number | null;
  origLength: number | null;
  /** Captured bytes from the MAC header on, hex. */
  payload: string | null;
  /** The task running when it was dropped, where the source says. */
  pid: number | null;
  comm: string | null;
  /** That task's cgroup v2 id and its path in the unified hierarchy, where known. */
  cgroupId: number | null;
  cgroup: string | null;
  /** The call chain, innermost caller first, when stacks are on. */
  stack: FrameJson[] | null;
}

export interface LostJson {
  type: 'lost';
  time: string;
  backend: BackendName;
  lost: number;
  where: string;
}

/** Drops the aggregator counted but could not itemise (too many distinct locations in one interval). */
export interface OverflowJson {
  type: 'overflow';
  time: string;
  backend: BackendName;
  count: number;
  locations: number;
  locationsLowerBound: boolean;
  limit: number;
}

export type EventJson = SummaryJson | PacketJson | LostJson | OverflowJson;

const hex = (v: bigint): string => `0x${BigInt.asUintN(64, v).toString(16)}`;

/** ISO 8601 UTC with all nine fractional digits of a nanosecond timestamp. */
export function isoFromNs(ns: bigint): string {
  const v = BigInt.asUintN(64, ns);
  const ms = v / 1_000_000n;
  const base = new Date(Number(ms)).toISOString(); // 2024-01-02T03:04:05.678Z
  return `${base.slice(0, 19)}.${(v % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

export function isoFromMs(ms: number): string {
  return new Date(ms).toISOString();
}

function location(resolved: Resolved | null): Pick<DropFields, 'symbol' | 'offset' | 'module'> {
  if (!resolved) return { symbol: null, offset: null, module: null };
  return { symbol: resolved.symbol, offset: Number(resolved.offset), module: resolved.module ?? null };
}

/** NET_DM's `%pS` text (`sym+0x1f/0x80 [mod]`) as symbol, offset and module; an odd shape keeps the text as the symbol. */
export function parseKernelSymbol(text: string): Resolved {
  const m = /^(\S+?)\+0x([0-9a-f]+)(?:\/0x[0-9a-f]+)?(?: \[(\S+)\])?$/.exec(text);
  if (!m) return { symbol: text, offset: 0n };
  const r: Resolved = { symbol: m[1]!, offset: BigInt(`0x${m[2]}`) };
  if (m[3] !== undefined) r.module = m[3];
  return r;
}

/**
 * A namespace's names for `netns`, from `names` where the run resolves them; where they name no container, those of
 * the task's cgroup (`task`).
 */
function workloadJson(netns: number | null, task: CgroupWorkload | null, names: NamesLookup): WorkloadJson {
  const w = netns === null || names === null ? null : names(netns);
  const json: WorkloadJson = {
    netns,
    netnsName: w?.netnsName ?? null,
    container: w?.container ?? null,
    containerName: w?.containerName ?? null,
    pod: w?.pod ?? null,
    podUid: w?.podUid ?? null,
  };
  return withTaskCgroup(json, task);
}

const cgroupOf = (id: number | null | undefined, cgroups: CgroupLookup): CgroupWorkload | null =>
  id === null || id === undefined || cgroups === null ? null : cgroups(id);

function placeJson(p: DropPlace, names: NamesLookup, cgroups: CgroupLookup): PlaceJson {
  const task = cgroupOf(p.cgroup, cgroups);
  return {
    ...workloadJson(p.netns, task, names),
    ifindex: p.ifindex,
    ifname: p.ifname,
    // The task only where the source gives one, so places without it keep their shape.
    ...(p.pid === undefined ? {} : { pid: p.pid }),
    ...(p.comm === undefined ? {} : { comm: p.comm }),
    ...(p.cgroup === undefined ? {} : { cgroupId: p.cgroup, cgroup: task?.path ?? null }),
    count: p.count,
  };
}

function frameJson(pc: bigint, resolve: FrameResolver): FrameJson {
  return { pc: hex(pc), ...location(resolve(pc)) };
}

function stacksJson(stacks: StackSamples, resolve: FrameResolver): NonNullable<SummaryJson['stacks']> {
  return {
    sampled: stacks.sampled,
    chains: stacks.chains.map((c) => ({ count: c.count, frames: c.frames.map((pc) => frameJson(pc, resolve)) })),
  };
}

/**
 * `resolve` names the frames of call chains; frames stay unnamed without it; `names` names the namespaces, and
 * `cgroups` the tasks' cgroups.
 */
export function summaryJson(
  entry: SummaryEntry,
  resolved: Resolved | null,
  timeMs: number,
  backend: BackendName,
  resolve: FrameResolver = () => null,
  names: NamesLookup = null,
  cgroups: CgroupLookup = null,
): SummaryJson {
  const json: SummaryJson = {
    type: 'summary',
    time: isoFromMs(timeMs),
    backend,
    origin: entry.origin,
    count: entry.count,
    pc: hex(entry.pc),
    ...location(entry.pc === 0n ? null : resolved),
    trap: entry.trap ?? null,
    reason: entry.reason,
  };
  if (entry.stacks) json.stacks = stacksJson(entry.stacks, resolve);
  if (entry.places) json.places = entry.places.map((p) => placeJson(p, names, cgroups));
  return json;
}

/** `resolved` is our lookup of `pc`, used only when the packet has no kernel-formatted symbol (tracefs). */
export function packetJson(
  p: PacketDrop,
  resolved: Resolved | null,
  timeMs: number,
  backend: BackendName,
  resolve: FrameResolver = () => null,
  names: NamesLookup = null,
  cgroups: CgroupLookup = null,
): PacketJson {
  const where = p.symbol !== undefined ? parseKernelSymbol(p.symbol) : resolved;
  const task = cgroupOf(p.cgroup, cgroups);
  return {
    type: 'packet',
    time: p.timestampNs !== undefined ? isoFromNs(p.timestampNs) : isoFromMs(timeMs),
    backend,
    origin: p.origin,
    count: 1,
    pc: p.pc === undefined ? null : hex(p.pc),
    ...location(where),
    trap: p.trapName ?? null,
    reason: p.reason ?? null,
    trapGroup: p.trapGroup ?? null,
    ifindex: p.inPort?.ifindex ?? null,
    ifname: p.inPort?.name ?? null,
    ...workloadJson(p.netns ?? null, task, names),
    l3: p.flow?.l3 ?? null,
    src: p.flow?.src ?? null,
    dst: p.flow?.dst ?? null,
    l4: p.flow?.l4 ?? null,
    sport: p.flow?.sport ?? null,
    dport: p.flow?.dport ?? null,
    cookie: p.cookie === undefined ? null : Buffer.from(p.cookie).toString('hex'),
    protocol: p.protocol ?? null,
    length: p.payload === undefined ? null : p.payload.length,
    origLength: p.origLen === undefined ? null : p.origLen >>> 0,
    payload: p.payload === undefined ? null : Buffer.from(p.payload).toString('hex'),
    pid: p.pid ?? null,
    comm: p.comm ?? null,
    cgroupId: p.cgroup ?? null,
    cgroup: task?.path ?? null,
    stack: p.stack === undefined ? null : p.stack.map((pc) => frameJson(pc, resolve)),
  };
}

export function lostJson(count: number, where: string, timeMs: number, backend: BackendName): LostJson {
  return { type: 'lost', time: isoFromMs(timeMs), backend, lost: count, where };
}

export function overflowJson(o: Overflow, timeMs: number, backend: BackendName): OverflowJson {
  return {
    type: 'overflow',
    time: isoFromMs(timeMs),
    backend,
    count: o.drops,
    locations: o.distinct,
    locationsLowerBound: o.distinctIsLowerBound,
    limit: o.limit,
  };
}

/** One line of JSON Lines output (no newline). */
export function jsonLine(event: EventJson): string {
  return JSON.stringify(event);
}
