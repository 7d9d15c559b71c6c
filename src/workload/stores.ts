// Parses the container names Podman (containers/storage) and Docker keep on disk (pure).

/** containers/storage's `containers.json` (Podman, CRI-O): a list of `{id, names: [...]}`; each ID to its first name. */
export function parseStorageContainers(json: string): Map<string, string> {
  const out = new Map<string, string>();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  if (!Array.isArray(doc)) return out;
  for (const entry of doc as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { id, names } = entry as { id?: unknown; names?: unknown };
    const name: unknown = Array.isArray(names) ? names[0] : undefined;
    if (typeof id === 'string' && typeof name === 'string' && name !== '') out.set(id, name);
  }
  return out;
}

/** Docker's `/var/lib/docker/containers/ID/config.v2.json`: `Name` is `/name`. */
export function parseDockerName(json: string): string | null {
  try {
    const doc = JSON.parse(json) as { Name?: unknown } | null;
    const name = doc?.Name;
    if (typeof name !== 'string') return null;
    const bare = name.startsWith('/') ? name.slice(1) : name;
    return bare === '' ? null : bare;
  } catch {
    return null;
  }
}
