// The one small interface between the front ends and a drop source: events, capabilities, and how a source describes itself.

import type { Flow } from '../packet/types.js';

export type AlertMode = 'summary' | 'packet';
export type Origin = 'software' | 'hardware';
/** A source's name, as `-b` takes it and JSON and metrics show it. */
export type BackendName = string;

export interface MonitorConfig {
  alertMode: AlertMode;
  truncLen: number;
  queueLen: number;
}

export interface StartOptions {
  /** Monitor software drops (kfree_skb). */
  sw: boolean;
  /** Monitor hardware (devlink trap) drops, where capabilities' settings say hw. */
  hw: boolean;
  /** Sample the kernel call chain of drops, where capabilities list 'stack'. */
  stack?: boolean;
}

/** Drops counted at one location since the previous summary event. */
export interface SummaryEntry {
  origin: Origin;
  /** Kernel text address of the kfree_skb caller; 0n for hardware entries and NET_DM's rx_dropped heuristic. */
  pc: bigint;
  /** Hardware trap name (hardware entries only). */
  trap?: string;
  /** Drop reason name (e.g. NO_SOCKET), or null when the source does not say. */
  reason: string | null;
  /** 0 for an entry that only brings samples (`stacks`) for drops counted in another entry. */
  count: number;
  /** Call chains sampled from some of these drops, where the backend records stacks and they were asked for. */
  stacks?: StackSamples;
  /** Where these drops happened, where the source knows: their counts add up to `count`. */
  places?: DropPlace[];
}

/** Drops at one location in one network namespace and on one device. */
export interface DropPlace {
  /** The network namespace's inode (`stat -L -c %i /proc/PID/ns/net`); null when the drop had no device or socket. */
  netns: number | null;
  /** The device's index and name; null when the packet had no device. */
  ifindex: number | null;
  ifname: string | null;
  /** The task the drops happened in, where the source tells (transmit and socket drops); absent or null otherwise. */
  pid?: number | null;
  comm?: string | null;
  /** That task's cgroup v2 id (the inode of its directory in the unified hierarchy), where the source tells. */
  cgroup?: number | null;
  count: number;
}

/** One kernel call chain, innermost caller first, and how many sampled drops took it. */
export interface CallChain {
  frames: readonly bigint[];
  count: number;
}

/** Stacks cost far more than counting, so they are sampled: these chains stand for `sampled` of the drops. */
export interface StackSamples {
  /** Most frequent first. */
  chains: CallChain[];
  /** Sampled drops, listed or not. */
  sampled: number;
}

/** One dropped packet (packet alert mode). Fields are present when the source provides them. */
export interface PacketDrop {
  origin: Origin;
  pc?: bigint;
  /** Kernel-formatted location (`%pS`), as NET_DM sends it. */
  symbol?: string;
  trapName?: string;
  trapGroup?: string;
  inPort?: { ifindex?: number; name?: string };
  cookie?: Uint8Array;
  /** Wall-clock time of the drop, nanoseconds since the epoch. */
  timestampNs?: bigint;
  protocol?: number;
  /** Packet bytes from the MAC header on, possibly truncated. */
  payload?: Uint8Array;
  origLen?: number;
  /** The headers decoded from `payload`, where the capabilities list 'flow'. */
  flow?: Flow;
  reason?: string;
  /** The kernel call chain that led to the drop, innermost caller first (when stacks are on). */
  stack?: readonly bigint[];
  /** The task running when the packet was dropped (for transmit-side and loopback drops, the sender). */
  pid?: number;
  comm?: string;
  /** That task's cgroup v2 id, where the source tells. */
  cgroup?: number;
  /** The network namespace's inode, where the source knows it; null when the drop had no device or socket. */
  netns?: number | null;
}

export type BackendEvent =
  | { kind: 'summary'; entries: SummaryEntry[] }
  | { kind: 'packet'; packet: PacketDrop }
  /** Events lost before we saw them: `where` names the place (e.g. "tracefs ring buffer cpu1", "netlink socket"). */
  | { kind: 'lost'; count: number; where: string };

export interface LostCount {
  where: string;
  count: number;
}

export interface Stats {
  /** Kernel's per-CPU queue tail drops (NET_DM); undefined when the backend has no such counter. */
  software?: { tailDropped: bigint };
  hardware?: { tailDropped: bigint };
  /** Everything lost between the kernel and us, since this backend was opened. */
  lost: LostCount[];
  /** Drops the kernel filter kept from dropwatch since this backend was opened, where the backend counts them. */
  kernelFiltered?: number;
}

/**
 * What a backend can add to a drop beyond its location, origin and count. `symbol`: the source names the location
 * itself (NET_DM's packet alerts), so it is known even when /proc/kallsyms hides addresses. `device`: the device (in
 * summary mode, per summary entries' `places`). `netns`: the network namespace's inode (places' and packets' `netns`),
 * which names the workload. `process`: the task the drop happened in (in summary mode, places' `comm`).
 */
export type DropField =
  'reason' | 'symbol' | 'protocol' | 'time' | 'device' | 'netns' | 'payload' | 'trap' | 'stack' | 'flow' | 'process';

/** A filter the kernel evaluates before a drop reaches us, so filtered-out drops cost nothing. */
export type KernelFilter = FtraceEventFilter | FieldSetFilter;

/** An ftrace event filter on skb:kfree_skb: it tests reason and protocol numbers (src/filter/pushdown.ts). */
export interface FtraceEventFilter {
  readonly syntax: 'ftrace-event';
  /** The kernel's reason table the filter's numbers refer to. */
  readonly reasons: ReadonlyMap<number, string>;
  /** The longest filter text the kernel takes, when the backend knows it (else src/filter/pushdown.ts's bound). */
  readonly maxLength?: number;
  /** Installs `expression`, or none for null. On a kernel refusal it rejects and keeps the previous filter. */
  apply(expression: string | null): Promise<void>;
}

/**
 * The fields a field-set filter tests, as the kernel sees them: numbers (0 where the drop has no device or namespace)
 * and the device's name (empty where it has no device), one byte a character.
 */
export type KernelSetField = 'protocol' | 'reason' | 'netns' | 'ifindex' | 'ifname';

/** One field's test: its value is in `values` (allow) or is not (deny); names for `ifname`, numbers for the rest. */
export interface KernelSet {
  readonly allow: boolean;
  readonly values: readonly (number | string)[];
}

/** A conjunction of per-field set tests; `none`: no drop passes. */
export interface KernelSets {
  readonly none: boolean;
  readonly fields: Partial<Readonly<Record<KernelSetField, KernelSet>>>;
}

/** Per-field allow or deny sets, evaluated as a conjunction in the kernel (src/filter/sets.ts). */
export interface FieldSetFilter {
  readonly syntax: 'field-sets';
  /** The kernel's reason table the sets' reason numbers refer to. */
  readonly reasons: ReadonlyMap<number, string>;
  /** The most values all the sets together may hold. */
  readonly maxValues: number;
  /** The sets are tested on hardware (trap) drops too, with no reason: origin is then left to dropwatch. */
  readonly hardware?: boolean;
  /** Installs `sets`, or none for null, at once: each drop is tested against the old filter or the new, whole. */
  apply(sets: KernelSets | null): Promise<void>;
}

/** What a source can give, known before it opens: the source table lists it, the opened backend's capabilities repeat it. */
export interface SourceOffer {
  /** The alert modes it can deliver. */
  readonly modes: readonly AlertMode[];
  /** The packet-queue settings it honours (`set trunc`, `set queue`) and whether it sees hardware drops (`set hw`). */
  readonly settings: { readonly trunc: boolean; readonly queue: boolean; readonly hw: boolean };
  /** What each mode adds to a drop. */
  readonly fields: { readonly summary: readonly DropField[]; readonly packet: readonly DropField[] };
}

/** What a backend honours and provides; the front ends decide from this alone, never from the backend's name. */
export interface BackendCapabilities extends SourceOffer {
  /** The kernel's drop reason names by number, when the backend knows the table (for checking filters early). */
  readonly reasons: ReadonlyMap<number, string> | null;
  /** In-kernel filtering, or null when every filter runs in dropwatch. */
  readonly kernelFilter: KernelFilter | null;
}

/** Whether `mode` adds `field` to a drop on a backend with these capabilities. */
export const provides = (capabilities: BackendCapabilities, mode: AlertMode, field: DropField): boolean =>
  capabilities.fields[mode].includes(field);

export type EventListener = (event: BackendEvent) => void;

/**
 * A drop source. Events are delivered through the listener, batched: a summary event carries every location
 * seen since the last one, so a drop storm costs one callback per batch, not one per drop.
 */
export interface Backend {
  readonly name: BackendName;
  readonly capabilities: BackendCapabilities;
  /** Install the (single) event listener; replaces any earlier one. */
  onEvent(listener: EventListener): void;
  /** Begin monitoring in the kernel. Rejects with a DropwatchError (KernelError for kernel refusals). */
  start(options: StartOptions): Promise<void>;
  /** Stop monitoring in the kernel and deliver any events still buffered before resolving. */
  stop(): Promise<void>;
  setConfig(change: Partial<MonitorConfig>): Promise<void>;
  getConfig(): Promise<MonitorConfig>;
  getStats(): Promise<Stats>;
  /** Stop if monitoring, release every kernel resource (sockets, tracefs instance). Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** One-line notices for the user (stderr), e.g. which backend auto chose and why. */
  notice: (line: string) => void;
  /** Call chains are asked for (`--stack`): `auto` passes over a source without them when a later one has them. */
  stack?: boolean;
}

/** A drop source as the source table lists it: what it is called, what it needs, what it can give. */
export interface SourceInfo {
  /** What `-b` takes, and what JSON and metrics show. */
  readonly name: BackendName;
  /** How messages name it ("NET_DM"). */
  readonly label: string;
  /** What it reads, for the program's description ("NET_DM netlink"). */
  readonly reads: string;
  /** What the machine must have, said when `auto` passes over it. */
  readonly needs: string;
  readonly offers: SourceOffer;
}

/** A row of the source table: the description and how to open it. */
export interface DropSource extends SourceInfo {
  /** The error code that means "this machine lacks it" (anything else, e.g. no privilege, ends the run). */
  readonly missing: string;
  open(options: OpenOptions): Promise<Backend>;
}
