// A scripted /proc, /run and runtime store for the resolver's unit tests, and timers that run when told.
import type { WorkloadFiles } from '../../src/workload/files.js';
import type { Timers } from '../../src/workload/resolver.js';

function fail(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

export interface ScriptedProcess {
  netns: number;
  cgroup?: string;
  start?: string;
}

/** Files, links and inodes by path; a directory lists the names under it. Every read is counted by path. */
export class ScriptedFiles implements WorkloadFiles {
  readonly files = new Map<string, string>();
  readonly links = new Map<string, string>();
  readonly inodes = new Map<string, number>();
  /** A path whose reads fail with this errno code (EACCES, ESRCH, ...). */
  readonly failing = new Map<string, string>();
  readonly reads: string[] = [];

  process(pid: number, p: ScriptedProcess): this {
    this.links.set(`/proc/${pid}/ns/net`, `net:[${p.netns}]`);
    this.files.set(`/proc/${pid}/cgroup`, p.cgroup ?? '0::/\n');
    this.files.set(`/proc/${pid}/stat`, `${pid} (x) S ${' 0'.repeat(18)} ${p.start ?? '100'} 0 0`);
    return this;
  }
  exit(pid: number): void {
    for (const map of [this.files, this.links])
      for (const k of [...map.keys()]) if (k.startsWith(`/proc/${pid}/`)) map.delete(k);
  }
  ipNetns(name: string, ino: number): this {
    this.inodes.set(`/run/netns/${name}`, ino);
    return this;
  }

  private check(path: string): void {
    this.reads.push(path);
    const code = this.failing.get(path);
    if (code) throw fail(code, path);
  }
  readonly now = {
    readFile: (path: string): string => this.found(this.files, path),
    readlink: (path: string): string => this.found(this.links, path),
    inode: (path: string): number => this.found(this.inodes, path),
  };
  private found<T>(map: Map<string, T>, path: string): T {
    this.check(path);
    const value = map.get(path);
    if (value === undefined) throw fail('ENOENT', path);
    return value;
  }
  async readFile(path: string): Promise<string> {
    return this.now.readFile(path);
  }
  async readlink(path: string): Promise<string> {
    return this.now.readlink(path);
  }
  async inode(path: string): Promise<number> {
    return this.now.inode(path);
  }
  async readdir(path: string): Promise<string[]> {
    this.check(path);
    const names = new Set<string>();
    for (const map of [this.files, this.links, this.inodes])
      for (const k of map.keys()) if (k.startsWith(`${path}/`)) names.add(k.slice(path.length + 1).split('/')[0]!);
    if (names.size === 0) throw fail('ENOENT', path);
    return [...names];
  }
  /** How many reads of exactly this path. */
  count(path: string): number {
    return this.reads.filter((r) => r === path).length;
  }
}

/** A clock and timers that move only when `advance` is called. */
export class ManualTimers implements Timers {
  time = 0;
  private pending: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  readonly now = (): number => this.time;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.pending.push({ at: this.time + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((t) => t.id !== handle);
  }
  get waiting(): number {
    return this.pending.length;
  }
  /** Moves the clock by `ms`, running each timer that comes due. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.pending.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending = this.pending.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = end;
  }
}
