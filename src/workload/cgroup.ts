// Parses /proc/PID/cgroup (v1, hybrid and v2) into the container ID, its runtime and the Kubernetes pod UID, and
// /proc/self/mountinfo into where the v2 hierarchy is mounted (pure).

export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker' | 'podman';

/** What a process's cgroup path says about where it runs; null where the path says nothing. */
export interface CgroupIdentity {
  container: string | null;
  runtime: ContainerRuntime | null;
  podUid: string | null;
}

const ID = '([0-9a-f]{64})';
/** `<prefix>-<id>` or `<prefix>-<id>.scope`: the systemd driver's scopes and CRI-O's cgroupfs names. */
const SCOPES: [RegExp, ContainerRuntime][] = [
  [new RegExp(`^cri-containerd-${ID}(?:\\.scope)?$`), 'containerd'],
  [new RegExp(`^crio-${ID}(?:\\.scope)?$`), 'cri-o'],
  [new RegExp(`^docker-${ID}(?:\\.scope)?$`), 'docker'],
  [new RegExp(`^libpod-${ID}(?:\\.scope)?$`), 'podman'],
];
const BARE_ID = new RegExp(`^${ID}$`);
/** systemd driver: `kubepods-pod<uid>.slice` or `kubepods-<qos>-pod<uid>.slice`, with `_` for each `-` of the uid. */
const SYSTEMD_POD = /^kubepods(?:-[a-z]+)?-pod([0-9a-f_]+)\.slice$/;
/** cgroupfs driver: a `pod<uid>` folder somewhere under `/kubepods`. */
const CGROUPFS_POD = /^pod([0-9a-f-]+)$/;

/** One cgroup path, e.g. `/kubepods/besteffort/pod<uid>/<id>`; the deepest container found wins. */
export function parseCgroupPath(path: string): CgroupIdentity {
  const out: CgroupIdentity = { container: null, runtime: null, podUid: null };
  const parts = path.split('/').filter((p) => p !== '');
  parts.forEach((part, i) => {
    const above = parts.slice(0, i);
    const inKube = above.some((p) => p === 'kubepods' || p === 'kubepods.slice');
    const systemdPod = SYSTEMD_POD.exec(part);
    if (systemdPod) out.podUid = systemdPod[1]!.replaceAll('_', '-');
    else if (above.includes('kubepods')) {
      const pod = CGROUPFS_POD.exec(part);
      if (pod) out.podUid = pod[1]!;
    }
    for (const [pattern, runtime] of SCOPES) {
      const m = pattern.exec(part);
      if (m) [out.container, out.runtime] = [m[1]!, runtime];
    }
    if (BARE_ID.test(part)) {
      if (above[above.length - 1] === 'docker') [out.container, out.runtime] = [part, 'docker'];
      else if (inKube && out.podUid !== null) [out.container, out.runtime] = [part, null];
    }
  });
  return out;
}

function weight(id: CgroupIdentity): number {
  return (id.container !== null ? 2 : 0) + (id.podUid !== null ? 1 : 0);
}

/** The whole file, a line `hierarchy:controllers:path` each: the line that says the most wins. */
export function parseProcCgroup(text: string): CgroupIdentity {
  let best: CgroupIdentity = { container: null, runtime: null, podUid: null };
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const found = parseCgroupPath(line.slice(second + 1));
    if (weight(found) > weight(best)) best = found;
  }
  return best;
}

/** mountinfo's octal escapes (`\040` for a space) undone. */
const unescapeMount = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/**
 * Where the cgroup v2 (unified) hierarchy is mounted, from /proc/self/mountinfo: `/sys/fs/cgroup/unified` on the v1
 * hybrid layout, `/sys/fs/cgroup` on v2 alone; a mount of the hierarchy's root before one of a sub-tree; null if none.
 */
export function parseCgroup2Mount(mountinfo: string): string | null {
  let sub: string | null = null;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 5 || fields[dash + 1] !== 'cgroup2') continue;
    const point = unescapeMount(fields[4]!);
    if (fields[3] === '/') return point;
    sub ??= point;
  }
  return sub;
}
