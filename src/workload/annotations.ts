// Parses an OCI bundle's config.json annotations into pod and container names, as containerd's CRI and CRI-O write them (pure).

/** Names a bundle's annotations give; null where they say nothing. */
export interface BundleNames {
  /** `namespace/name`, only when both halves are there. */
  pod: string | null;
  podUid: string | null;
  /** The pod spec's container name; null for a sandbox (pause) container. */
  containerName: string | null;
  /** The pod's sandbox (pause) container rather than one of its workload's containers. */
  sandbox: boolean;
}

const CRI = 'io.kubernetes.cri.';
const NONE: BundleNames = { pod: null, podUid: null, containerName: null, sandbox: false };

function annotationsOf(json: string): Record<string, unknown> | null {
  try {
    const doc: unknown = JSON.parse(json);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return null;
    const notes = (doc as { annotations?: unknown }).annotations;
    return typeof notes === 'object' && notes !== null && !Array.isArray(notes)
      ? (notes as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** The first of `keys` holding a non-empty string. */
function pick(notes: Record<string, unknown>, ...keys: string[]): string | null {
  for (const key of keys) {
    const value = notes[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  return null;
}

/** containerd's CRI plugin (`io.kubernetes.cri.*`) first, then CRI-O's (`io.kubernetes.pod.*`, `…container.name`). */
export function parseBundleNames(json: string): BundleNames {
  const notes = annotationsOf(json);
  if (notes === null) return NONE;
  const namespace = pick(notes, `${CRI}sandbox-namespace`, 'io.kubernetes.pod.namespace');
  const name = pick(notes, `${CRI}sandbox-name`, 'io.kubernetes.pod.name');
  const type = pick(notes, `${CRI}container-type`, 'io.kubernetes.cri-o.ContainerType');
  const sandbox = type === 'sandbox';
  return {
    pod: namespace !== null && name !== null ? `${namespace}/${name}` : null,
    podUid: pick(notes, `${CRI}sandbox-uid`, 'io.kubernetes.pod.uid'),
    containerName: sandbox ? null : pick(notes, `${CRI}container-name`, 'io.kubernetes.container.name'),
    sandbox,
  };
}
