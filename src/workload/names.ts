// A container ID to its names, from what its runtime leaves on disk: OCI bundles, Podman's store, Docker's config.
import { parseBundleNames } from './annotations.js';
import type { ContainerRuntime } from './cgroup.js';
import { attempt, PATHS, type WorkloadFiles } from './files.js';
import { parseDockerName, parseStorageContainers } from './stores.js';

export interface ContainerNames {
  containerName: string | null;
  pod: string | null;
  podUid: string | null;
  sandbox: boolean;
}

const NOTHING: ContainerNames = { containerName: null, pod: null, podUid: null, sandbox: false };

/** One scan's reader: directory listings and Podman's store are read once per scan, found names kept across scans. */
export class ContainerNamer {
  private tasks: Promise<string[]> | null = null;
  private storeNames: Promise<Map<string, string>> | null = null;

  constructor(
    private readonly files: WorkloadFiles,
    /** Names found for IDs in earlier scans (an ID never names another container), bounded by the caller. */
    private readonly known: Map<string, ContainerNames>,
  ) {}

  async names(id: string, runtime: ContainerRuntime | null): Promise<ContainerNames> {
    const known = this.known.get(id);
    if (known) return known;
    const any = runtime === null;
    let found = NOTHING;
    if (any || runtime === 'containerd') found = await this.fromContainerd(id);
    if (found === NOTHING && (any || runtime === 'cri-o' || runtime === 'podman')) found = await this.fromStorage(id);
    if (found === NOTHING && (any || runtime === 'docker')) found = await this.fromDocker(id);
    if (found !== NOTHING) this.known.set(id, found);
    return found;
  }

  /** containerd keeps each running task's bundle under its namespace (`k8s.io` for the CRI plugin, `moby`, …). */
  private async fromContainerd(id: string): Promise<ContainerNames> {
    this.tasks ??= attempt(() => this.files.readdir(PATHS.containerdTasks)).then((l) => l ?? []);
    for (const ns of await this.tasks) {
      const json = await attempt(() => this.files.readFile(`${PATHS.containerdTasks}/${ns}/${id}/config.json`));
      if (json !== null) return named(parseBundleNames(json));
    }
    return NOTHING;
  }

  /** CRI-O's and Podman's bundles live in containers/storage's `userdata`; Podman's names in `containers.json`. */
  private async fromStorage(id: string): Promise<ContainerNames> {
    let bundle = NOTHING;
    for (const dir of storageDirs()) {
      const json = await attempt(() => this.files.readFile(`${dir}/${id}/userdata/config.json`));
      if (json === null) continue;
      bundle = named(parseBundleNames(json));
      break;
    }
    if (bundle.containerName !== null || bundle.sandbox) return bundle;
    const name = (await this.storage()).get(id);
    return name === undefined ? bundle : { ...bundle, containerName: name };
  }

  private storage(): Promise<Map<string, string>> {
    this.storeNames ??= (async () => {
      const all = new Map<string, string>();
      for (const dir of storageDirs())
        for (const file of ['containers.json', 'volatile-containers.json']) {
          const json = await attempt(() => this.files.readFile(`${dir}/${file}`));
          if (json !== null) for (const [id, name] of parseStorageContainers(json)) all.set(id, name);
        }
      return all;
    })();
    return this.storeNames;
  }

  private async fromDocker(id: string): Promise<ContainerNames> {
    const json = await attempt(() => this.files.readFile(`${PATHS.docker}/${id}/config.v2.json`));
    const name = json === null ? null : parseDockerName(json);
    return name === null ? NOTHING : { ...NOTHING, containerName: name };
  }
}

function storageDirs(): string[] {
  return PATHS.storage.flatMap((root) => PATHS.storageDrivers.map((driver) => `${root}/${driver}-containers`));
}

/** A bundle that says nothing is no answer, so the next place is tried. */
function named(names: ContainerNames): ContainerNames {
  return names.containerName === null && names.pod === null && names.podUid === null && !names.sandbox
    ? NOTHING
    : names;
}
