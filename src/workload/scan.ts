// One pass over the node: every network namespace with its ip-netns name, processes, container and pod.
import { parseProcCgroup, type CgroupIdentity } from './cgroup.js';
import { attempt, attemptNow, eachLimited, PATHS, type WorkloadFiles } from './files.js';
import type { ContainerNamer, ContainerNames } from './names.js';
import { parseNetnsLink, parseStartTime } from './proc.js';
import type { Workload } from './types.js';

/** A process seen in the namespace, by pid and start time, so a reused pid is not taken for it. */
export interface Witness {
  pid: number;
  start: string;
}

/** A namespace found, and what can cheaply show later that the inode is still the same namespace. */
export interface Found {
  workload: Workload;
  /** The /run/netns file that gave `netnsName`. */
  netnsFile: string | null;
  /** The process that gave the container and pod (or any process in it). */
  witness: Witness | null;
}

export interface Scan {
  host: number | null;
  found: Map<number, Found>;
}

/** How many reads a scan keeps in flight: enough to hide latency, few enough to leave the thread pool to others. */
const IN_FLIGHT = 16;

export async function netnsOf(files: WorkloadFiles, pid: number | 'self'): Promise<number | null> {
  const link = await attempt(() => files.readlink(`${PATHS.proc}/${pid}/ns/net`));
  return link === null ? null : parseNetnsLink(link);
}

/** The same two reads, made at once, for a lookup that re-checks one name. */
export function witnessNow(files: WorkloadFiles, pid: number): { netns: number | null; start: string | null } {
  const link = attemptNow(() => files.now.readlink(`${PATHS.proc}/${pid}/ns/net`));
  const stat = attemptNow(() => files.now.readFile(`${PATHS.proc}/${pid}/stat`));
  return { netns: link === null ? null : parseNetnsLink(link), start: stat === null ? null : parseStartTime(stat) };
}

export async function startOf(files: WorkloadFiles, pid: number): Promise<string | null> {
  const stat = await attempt(() => files.readFile(`${PATHS.proc}/${pid}/stat`));
  return stat === null ? null : parseStartTime(stat);
}

/** ip-netns names by inode; the first name in order when several files name one namespace. */
async function netnsFiles(files: WorkloadFiles): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const names = ((await attempt(() => files.readdir(PATHS.netns))) ?? []).sort();
  for (const name of names) {
    const ino = await attempt(() => files.inode(`${PATHS.netns}/${name}`));
    if (ino !== null && !out.has(ino)) out.set(ino, name);
  }
  return out;
}

/** Pids of every process, by namespace inode, in ascending pid order. */
async function processesByNetns(files: WorkloadFiles): Promise<Map<number, number[]>> {
  const pids = ((await attempt(() => files.readdir(PATHS.proc))) ?? [])
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
  const inodes = new Map<number, number>();
  await eachLimited(pids, IN_FLIGHT, async (pid) => {
    const ino = await netnsOf(files, pid);
    if (ino !== null) inodes.set(pid, ino);
  });
  const out = new Map<number, number[]>();
  for (const pid of pids) {
    const ino = inodes.get(pid);
    if (ino !== undefined) out.set(ino, [...(out.get(ino) ?? []), pid]);
  }
  return out;
}

interface Member {
  pid: number;
  cgroup: CgroupIdentity;
  names: ContainerNames | null;
}

/** A workload's container before the pod's sandbox; among equals the lowest pid; then any pod seen. */
function choose(members: Member[]): Member | null {
  const withContainer = members.filter((m) => m.cgroup.container !== null);
  return (
    withContainer.find((m) => m.names !== null && !m.names.sandbox) ??
    withContainer[0] ??
    members.find((m) => m.cgroup.podUid !== null) ??
    null
  );
}

/** The namespace's processes' cgroups, one member per container (and one for a pod-only or plain process). */
async function membersOf(files: WorkloadFiles, namer: ContainerNamer, pids: number[]): Promise<Member[]> {
  const members: Member[] = [];
  const seen = new Set<string>();
  for (const pid of pids) {
    const text = await attempt(() => files.readFile(`${PATHS.proc}/${pid}/cgroup`));
    if (text === null) continue;
    const cgroup = parseProcCgroup(text);
    const key = cgroup.container ?? `pod:${cgroup.podUid}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const names = cgroup.container === null ? null : await namer.names(cgroup.container, cgroup.runtime);
    members.push({ pid, cgroup, names });
  }
  return members;
}

/** The first of `pids` still alive, with its start time (a pid reused since /proc was listed has a later one). */
async function witnessOf(files: WorkloadFiles, pids: number[]): Promise<Witness | null> {
  for (const pid of pids) {
    const start = await startOf(files, pid);
    if (start !== null) return { pid, start };
  }
  return null;
}

async function resolveOne(
  files: WorkloadFiles,
  namer: ContainerNamer,
  netns: number,
  pids: number[],
  netnsName: string | null,
): Promise<Found | null> {
  const chosen = choose(await membersOf(files, namer, pids));
  const order = chosen ? [chosen.pid, ...pids.filter((p) => p !== chosen.pid)] : pids;
  const witness = await witnessOf(files, order);
  if (witness === null || (chosen !== null && witness.pid !== chosen.pid)) return null;
  const workload: Workload = {
    netns,
    netnsName,
    container: chosen?.cgroup.container ?? null,
    containerName: chosen?.names?.containerName ?? null,
    pod: chosen?.names?.pod ?? null,
    podUid: chosen?.names?.podUid ?? chosen?.cgroup.podUid ?? null,
  };
  return { workload, netnsFile: netnsName === null ? null : `${PATHS.netns}/${netnsName}`, witness };
}

/** Reads the whole node; a process that exits or a file that cannot be read mid-scan is left out, never an error. */
export async function scanNamespaces(files: WorkloadFiles, namer: ContainerNamer): Promise<Scan> {
  // PID 1's namespace; where a supervisor as PID 1 hides it, ours (dropwatch runs on the host).
  const host = (await netnsOf(files, 1)) ?? (await netnsOf(files, 'self'));
  const named = await netnsFiles(files);
  const byNetns = await processesByNetns(files);
  const found = new Map<number, Found>();
  if (host !== null) {
    const workload = { netns: host, netnsName: 'host', container: null, containerName: null, pod: null, podUid: null };
    found.set(host, { workload, netnsFile: null, witness: null });
  }
  const others = [...byNetns].filter(([ino]) => ino !== host);
  await eachLimited(others, IN_FLIGHT, async ([ino, pids]) => {
    const one = await resolveOne(files, namer, ino, pids, named.get(ino) ?? null);
    if (one) found.set(ino, one);
  });
  for (const [ino, name] of named) {
    if (found.has(ino) || ino === host) continue;
    const workload = { netns: ino, netnsName: name, container: null, containerName: null, pod: null, podUid: null };
    found.set(ino, { workload, netnsFile: `${PATHS.netns}/${name}`, witness: null });
  }
  return { host, found };
}
