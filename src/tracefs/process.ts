// Task names for the pids in drop records: /proc/<pid>/comm while the task lives, else the name tracing saved for it.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface ProcessNames {
  /** The task's name, or null when neither /proc nor tracing's saved_cmdlines knows it. */
  name(pid: number): string | null;
  /** Forgets every name: pids are reused, so names are kept for one batch only. */
  forget(): void;
}

/** `saved_cmdlines` lines: `PID COMM`. */
export function parseSavedCmdlines(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line);
    if (m) names.set(Number(m[1]), m[2]!);
  }
  return names;
}

export function processNames(tracefsRoot: string, proc = '/proc'): ProcessNames {
  const names = new Map<number, string | null>();
  // A short-lived sender (a loopback drop's task) is often gone before its batch arrives; tracing recorded its name.
  let saved: Map<number, string> | null = null;
  const savedName = (pid: number): string | null => {
    if (saved === null) {
      try {
        saved = parseSavedCmdlines(readFileSync(path.join(tracefsRoot, 'saved_cmdlines'), 'utf8'));
      } catch {
        saved = new Map();
      }
    }
    return saved.get(pid) ?? null;
  };
  return {
    name(pid) {
      let name = names.get(pid);
      if (name !== undefined) return name;
      try {
        name = readFileSync(`${proc}/${pid}/comm`, 'utf8').trimEnd();
      } catch {
        name = savedName(pid);
      }
      names.set(pid, name);
      return name;
    },
    forget: () => {
      names.clear();
      saved = null;
    },
  };
}
