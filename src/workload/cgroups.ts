// CgroupResolver: a task's cgroup v2 id to its path, from walks of the unified hierarchy made beside the event path
// (cached, bounded, coalesced, one more when an unknown id appears), and to the container and pod the path names.
import { parseCgroup2Mount, parseCgroupPath, type CgroupIdentity } from './cgroup.js';
import { attempt, eachLimited, PATHS, type CgroupTreeFiles, type WorkloadFiles } from './files.js';
import { ContainerNamer, type ContainerNames } from './names.js';
import type { Timers } from './resolver.js';
import { unknownCgroup } from './task.js';
import type { CgroupNames, CgroupWorkload } from './types.js';

export interface CgroupResolverOptions {
  tree: CgroupTreeFiles;
  /** For the containers' names (their runtimes' files). */
  files: WorkloadFiles;
  now: () => number;
  timers: Timers;
  /** Cgroups a walk records at most, and named cgroups kept. */
  maxCgroups: number;
  /** At most one walk starts per this many milliseconds. */
  walkIntervalMs: number;
  /** How long an id a walk did not find waits before it may ask for another walk. */
  retryMs: number;
}

/** Directories read at once during a walk. */
const IN_FLIGHT = 16;
/** Walks spaced at least this many times their own duration apart. */
const WALK_SHARE = 10;

/** Every cgroup under `root` by id (its directory's inode), as a path from the root; at most `max` of them. */
export async function walkCgroups(tree: CgroupTreeFiles, root: string, max: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  let level = ['/'];
  while (level.length > 0 && out.size < max) {
    const next: string[] = [];
    await eachLimited(level, IN_FLIGHT, async (path) => {
      const dir = path === '/' ? root : `${root}${path}`;
      const id = await attempt(() => tree.inode(dir));
      if (id === null || out.size >= max) return;
      out.set(id, path);
      for (const name of (await attempt(() => tree.subdirs(dir))) ?? [])
        next.push(path === '/' ? `/${name}` : `${path}/${name}`);
    });
    level = next;
  }
  return out;
}

export class CgroupResolver implements CgroupNames {
  private paths = new Map<number, string>();
  /** Ids looked up whose names are settled (found, or looked for once). */
  private readonly named = new Map<number, CgroupWorkload>();
  private readonly containers = new Map<string, ContainerNames>();
  private readonly naming = new Map<number, Promise<void>>();
  private readonly misses = new Map<number, number>();
  private wanted = new Set<number>();
  /** Where the hierarchy is mounted: undefined until read, null when there is none. */
  private root: string | null | undefined = undefined;
  private walkTimer: unknown = null;
  private walking: Promise<void> | null = null;
  private lastWalk = -Infinity;
  private lastWalkCost = 0;
  private closed = false;

  /** Walks at once: the cgroups of what runs already (containers started before us) are named from the first drop. */
  constructor(private readonly o: CgroupResolverOptions) {
    this.requestWalk();
  }

  lookup(id: number): CgroupWorkload {
    const done = this.named.get(id);
    if (done) return done;
    const path = this.paths.get(id);
    if (path === undefined) {
      if ((this.misses.get(id) ?? -Infinity) <= this.o.now()) {
        this.wanted.add(id);
        this.requestWalk();
      }
      return unknownCgroup(id);
    }
    const identity = parseCgroupPath(path);
    const names = identity.container === null ? null : (this.containers.get(identity.container) ?? null);
    const found = workloadOf(id, path, identity, names);
    if (identity.container === null || names !== null) this.keep(found);
    else this.nameLater(found, identity);
    return found;
  }

  close(): void {
    this.closed = true;
    if (this.walkTimer !== null) this.o.timers.clearTimeout(this.walkTimer);
    this.walkTimer = null;
  }

  /** Resolves once no walk or naming is running (tests). */
  async settled(): Promise<void> {
    while (this.walking || this.naming.size > 0) await (this.walking ?? [...this.naming.values()][0]);
  }

  private keep(found: CgroupWorkload): void {
    this.named.set(found.id, found);
    trim(this.named, this.o.maxCgroups);
  }

  /** The container's names from its runtime's files, looked for once; the ID alone is shown meanwhile. */
  private nameLater(found: CgroupWorkload, identity: CgroupIdentity): void {
    if (this.naming.has(found.id) || this.closed) return;
    const namer = new ContainerNamer(this.o.files, this.containers);
    const naming = attempt(() => namer.names(identity.container!, identity.runtime)).then((names) => {
      this.naming.delete(found.id);
      trim(this.containers, this.o.maxCgroups);
      this.keep(workloadOf(found.id, found.path!, identity, names));
    });
    this.naming.set(found.id, naming);
  }

  private requestWalk(): void {
    if (this.closed || this.walking || this.walkTimer !== null) return;
    const spacing = Math.max(this.o.walkIntervalMs, this.lastWalkCost * WALK_SHARE);
    const wait = Math.max(0, this.lastWalk + spacing - this.o.now());
    this.walkTimer = this.o.timers.setTimeout(() => {
      this.walkTimer = null;
      this.walking = this.walk().finally(() => {
        this.walking = null;
        if ([...this.wanted].some((id) => !this.paths.has(id))) this.requestWalk();
      });
    }, wait);
  }

  private async walk(): Promise<void> {
    const started = (this.lastWalk = this.o.now());
    const wanted = this.wanted;
    this.wanted = new Set();
    if (this.root === undefined) {
      const mounts = await attempt(() => this.o.tree.readFile(PATHS.mountinfo));
      this.root = mounts === null ? null : parseCgroup2Mount(mounts);
    }
    const root = this.root;
    const found = root === null ? null : await attempt(() => walkCgroups(this.o.tree, root, this.o.maxCgroups));
    this.lastWalkCost = this.o.now() - started;
    if (found !== null) this.paths = found;
    for (const id of wanted) if (!this.paths.has(id)) this.misses.set(id, started + this.o.retryMs);
    trim(this.misses, this.o.maxCgroups);
  }
}

function workloadOf(id: number, path: string, identity: CgroupIdentity, names: ContainerNames | null): CgroupWorkload {
  return {
    id,
    path,
    container: identity.container,
    containerName: names?.containerName ?? null,
    pod: names?.pod ?? null,
    podUid: names?.podUid ?? identity.podUid,
  };
}

/** Drops the oldest entries of an insertion-ordered map past `max`. */
function trim<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) break;
    map.delete(key);
  }
}
