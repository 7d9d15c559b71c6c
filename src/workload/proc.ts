// Parses the two /proc values the resolver needs: a namespace link and a process's start time (pure).

/** `net:[4026531840]`, the target of /proc/PID/ns/net, to the namespace's inode; null for anything else. */
export function parseNetnsLink(link: string): number | null {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), read after the last `)` since comm may hold any. */
export function parseStartTime(stat: string): string | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const rest = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  return rest[19] ?? null;
}
