// Task names for the pids in drop records, from /proc/<pid>/comm: a batch of drops comes from a few tasks.
import { readFileSync } from 'node:fs';

export interface ProcessNames {
  /** The task's name, or null when it has gone. */
  name(pid: number): string | null;
  /** Forgets every name: pids are reused, so names are kept for one batch only. */
  forget(): void;
}

export function processNames(proc = '/proc'): ProcessNames {
  const names = new Map<number, string | null>();
  return {
    name(pid) {
      let name = names.get(pid);
      if (name !== undefined) return name;
      try {
        name = readFileSync(`${proc}/${pid}/comm`, 'utf8').trimEnd();
      } catch {
        name = null;
      }
      names.set(pid, name);
      return name;
    },
    forget: () => names.clear(),
  };
}
