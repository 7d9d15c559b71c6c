// A drop's workload from its network namespace and, where that names none, from its task's cgroup (pure).
import type { CgroupWorkload } from './types.js';

/** The container and pod fields a namespace's names and a cgroup's share. */
export interface ContainerFields {
  container: string | null;
  containerName: string | null;
  pod: string | null;
  podUid: string | null;
}

/**
 * The namespace's names, with the container and pod of the task's cgroup where the namespace names neither: a
 * container on the host's network (or another's) is known only by the cgroup of the task that dropped.
 */
export function withTaskCgroup<W extends ContainerFields>(netns: W, task: CgroupWorkload | null): W {
  if (task === null || netns.container !== null || netns.pod !== null || netns.podUid !== null) return netns;
  if (task.container === null && task.podUid === null) return netns;
  return {
    ...netns,
    container: task.container,
    containerName: task.containerName,
    pod: task.pod,
    podUid: task.podUid,
  };
}

/** An id not found (yet). */
export const unknownCgroup = (id: number): CgroupWorkload => ({
  id,
  path: null,
  container: null,
  containerName: null,
  pod: null,
  podUid: null,
});
