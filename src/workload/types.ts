// What a drop's network namespace says about its workload, and the seam the engine asks it through.

/** Names found for one network namespace on this node alone; null where nothing was found (yet). */
export interface Workload {
  /** The namespace's inode, as `stat -L -c %i /proc/PID/ns/net` shows it. */
  netns: number;
  /** `host` for the host's namespace, else its `ip netns` name, else null. */
  netnsName: string | null;
  /** The full container ID of a container running in the namespace. */
  container: string | null;
  /** The runtime's name for that container (Podman, Docker, or the pod spec's container name). */
  containerName: string | null;
  /** `namespace/name` of the Kubernetes pod. */
  pod: string | null;
  podUid: string | null;
}

/** What a task's cgroup v2 id says: its path in the unified hierarchy, and the container and pod that path names. */
export interface CgroupWorkload {
  /** The cgroup's id: the inode of its directory in the unified hierarchy. */
  id: number;
  /** From the hierarchy's root, e.g. `/libpod_parent/libpod-ID`; null while not found (yet). */
  path: string | null;
  container: string | null;
  containerName: string | null;
  /** `namespace/name` of the Kubernetes pod. */
  pod: string | null;
  podUid: string | null;
}

/** Names for cgroup ids, as WorkloadNames for namespaces: at once, never failing, an unknown id looked for later. */
export interface CgroupNames {
  lookup(id: number): CgroupWorkload;
  close(): void;
}

/**
 * Names for namespaces, resolved beside the event path: `lookup` never blocks and never fails. A namespace not known
 * yet comes back with null names and a refresh is started, so a later interval names it.
 */
export interface WorkloadNames {
  lookup(netns: number): Workload;
  /** A task's cgroup by its v2 id, where the run resolves cgroups (a drop in a task's context carries one). */
  cgroup?(id: number): CgroupWorkload;
  /** Stops background work (timers, scans); lookups still answer from what is known. */
  close(): void;
}
