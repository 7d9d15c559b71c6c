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

/**
 * Names for namespaces, resolved beside the event path: `lookup` never blocks and never fails. A namespace not known
 * yet comes back with null names and a refresh is started, so a later interval names it.
 */
export interface WorkloadNames {
  lookup(netns: number): Workload;
  /** Stops background work (timers, scans); lookups still answer from what is known. */
  close(): void;
}
