// The OS side of the tracefs backend: find (or mount, and later unmount) tracefs, create and remove our private
// instances, write their control files, reclaim instances left by killed runs. All of it synchronous and small.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DropwatchError } from '../errors/index.js';
import { parseLastErrorLog } from './format.js';

export const DEFAULT_TRACEFS = '/sys/kernel/tracing';
export const DEBUGFS_TRACEFS = '/sys/kernel/debug/tracing';
export const DEFAULT_PREFIX = 'dropwatch';
const EVENT = 'events/skb/kfree_skb';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Maps an fs error to our stable codes; `what` names the file for the one-line message. */
export function fsError(err: unknown, what: string): DropwatchError {
  const code = errno(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new DropwatchError('E_PRIVILEGE', `tracefs access requires root (CAP_SYS_ADMIN): cannot use ${what}`, {
      cause: err,
    });
  }
  const msg = (err as Error | undefined)?.message ?? String(err);
  return new DropwatchError('E_IO', `tracefs: ${what}: ${msg}`, { cause: err });
}

function isRealDir(p: string): boolean {
  try {
    const st = fs.lstatSync(p);
    return st.isDirectory() && !st.isSymbolicLink();
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return false;
    throw fsError(err, p);
  }
}

function hasInstances(root: string): boolean {
  try {
    return fs.statSync(path.join(root, 'instances')).isDirectory();
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return false;
    throw fsError(err, root);
  }
}

/** tracefs as this process mounted it, and how many backends use it: unmounted when the last lets go, or at exit. */
let ourMount: { path: string; users: number } | null = null;

/** Runs umount on our mount point; false when it is busy (another process still has files open there). */
function unmount(path: string): boolean {
  try {
    execFileSync('umount', [path], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** A backend starts using `root`; when we mounted it, returns what lets it go again (unmounting after the last). */
export function holdTracefs(root: string): () => void {
  const mount = ourMount;
  if (mount === null || mount.path !== root) return () => {};
  mount.users++;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--mount.users > 0 || ourMount !== mount) return;
    // Busy (another process has files open there): it stays mounted, and the exit hook tries once more.
    if (unmount(mount.path)) ourMount = null;
  };
}

/**
 * The tracefs mount point: `root` when given, else /sys/kernel/tracing (mounting tracefs there when it is an
 * empty mount point and `mount` allows: holdTracefs then unmounts it after use), else the debugfs automount
 * /sys/kernel/debug/tracing.
 */
export function findTracefs(root?: string, mount = true): string {
  if (root !== undefined) {
    if (hasInstances(root)) return root;
    throw new DropwatchError('E_TRACEFS_MISSING', `tracefs not found at ${root} (no instances directory)`);
  }
  if (hasInstances(DEFAULT_TRACEFS)) return DEFAULT_TRACEFS;
  let mountError = '';
  if (mount && isRealDir(DEFAULT_TRACEFS)) {
    try {
      execFileSync('mount', ['-t', 'tracefs', 'nodev', DEFAULT_TRACEFS], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 10_000,
      });
      ourMount = { path: DEFAULT_TRACEFS, users: 0 };
      if (hasInstances(DEFAULT_TRACEFS)) return DEFAULT_TRACEFS;
    } catch (err) {
      const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
      if (/permission|not permitted|only root/i.test(stderr) || (process.getuid?.() ?? 0) !== 0) {
        throw new DropwatchError('E_PRIVILEGE', `mounting tracefs requires root (CAP_SYS_ADMIN): ${DEFAULT_TRACEFS}`, {
          cause: err,
        });
      }
      mountError = stderr ? `: ${stderr.split('\n')[0]}` : '';
    }
  }
  if (hasInstances(DEBUGFS_TRACEFS)) return DEBUGFS_TRACEFS;
  throw new DropwatchError(
    'E_TRACEFS_MISSING',
    `tracefs is not mounted at ${DEFAULT_TRACEFS} and could not be mounted${mountError}`,
  );
}

/** True unless the process is known not to exist (EPERM means it exists but is not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) !== 'ESRCH';
  }
}

/** Our instances' names: `<prefix>-<pid>`, `-<n>` when that was taken, and `-chains` for a chain instance. */
function namePattern(prefix: string): RegExp {
  return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)(?:-\\d+)?(?:-chains)?$`);
}

/**
 * Removes `<prefix>-<pid>[-n]` instances whose pid no longer exists (a run killed with SIGKILL leaves one).
 * Returns the names removed; an instance still held open (e.g. by an orphaned child) is reported through `warn`.
 */
export function reclaimStale(root: string, prefix: string, alive = pidAlive, warn?: (msg: string) => void): string[] {
  const dir = path.join(root, 'instances');
  const re = namePattern(prefix);
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw fsError(err, dir);
  }
  for (const name of names) {
    const m = re.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const inst = path.join(dir, name);
    if (!isRealDir(inst)) continue;
    try {
      fs.rmdirSync(inst);
      removed.push(name);
    } catch (err) {
      warn?.(`could not remove stale tracefs instance ${inst}: ${errno(err) ?? String(err)}`);
    }
  }
  return removed;
}

/**
 * Everything creating an instance needs, checked without changing anything: the prefix makes a plain directory
 * name, `instances/` is a real directory we may write (not a symlink), and skb:kfree_skb exists. Lets open() report
 * E_USAGE / E_TRACEFS_MISSING / E_PRIVILEGE / E_EVENT_MISSING up front while the instance itself waits for start().
 */
export function checkTracefs(root: string, prefix: string): void {
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/.test(prefix)) {
    throw new DropwatchError('E_USAGE', `tracefs instance prefix "${prefix}" must be letters, digits, '_', '.', '-'`);
  }
  const instances = path.join(root, 'instances');
  if (!isRealDir(instances))
    throw new DropwatchError('E_TRACEFS_MISSING', `${instances} is not a tracefs instances directory`);
  try {
    // access(2) checks the real uid's rights without creating anything (mkdir would cost a ring buffer per CPU).
    fs.accessSync(instances, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw fsError(err, instances);
  }
  if (!fs.existsSync(path.join(root, EVENT, 'format'))) {
    throw new DropwatchError('E_EVENT_MISSING', `tracepoint skb:kfree_skb not found in ${path.join(root, 'events')}`);
  }
}

/** CPU numbers under `<dir>/per_cpu` (the top level and every instance have the same set). */
export function listCpus(dir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(dir, 'per_cpu'));
  } catch (err) {
    throw fsError(err, path.join(dir, 'per_cpu'));
  }
  return names
    .map((d) => /^cpu(\d+)$/.exec(d)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Reads a file under the top-level tracefs directory (layouts: reading changes nothing, unlike making an instance). */
export function readTracefs(root: string, rel: string): string {
  const p = path.join(root, rel);
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    throw fsError(err, p);
  }
}

// Instances this process created and has not removed yet: what the exit handler must clean up.
const live = new Set<TracefsInstance>();

export interface InstanceOptions {
  root: string;
  prefix?: string;
  pid?: number;
  /** Appended to the name (`<prefix>-<pid>-<suffix>`): the chain instance's is 'chains'. */
  suffix?: 'chains';
  /** Per-CPU ring-buffer size in KiB. */
  bufferSizeKb?: number;
  /** Instance trace_clock; 'mono' is CLOCK_MONOTONIC, the clock process.hrtime reads. */
  traceClock?: string;
  warn?: (msg: string) => void;
}

/** One private instance directory `<root>/instances/<prefix>-<pid>`. */
export class TracefsInstance {
  readonly root: string;
  readonly name: string;
  readonly dir: string;
  /** Descriptors opened on the instance's files; closed before rmdir (an instance with open files cannot be removed). */
  readonly fds = new Set<number>();
  private removed = false;

  private constructor(root: string, name: string) {
    this.root = root;
    this.name = name;
    this.dir = path.join(root, 'instances', name);
  }

  static create(opts: InstanceOptions): TracefsInstance {
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    const root = opts.root;
    checkTracefs(root, prefix);
    reclaimStale(root, prefix, pidAlive, opts.warn);
    const pid = opts.pid ?? process.pid;
    const taken = new Set([...live].map((i) => i.dir));
    let inst: TracefsInstance | undefined;
    for (let n = 0; n < 100 && !inst; n++) {
      const name = `${prefix}-${pid}${n === 0 ? '' : `-${n}`}${opts.suffix ? `-${opts.suffix}` : ''}`;
      const candidate = new TracefsInstance(root, name);
      if (taken.has(candidate.dir)) continue;
      try {
        // mkdir never follows a symlink in its last component: an existing link gives EEXIST, like any other entry.
        fs.mkdirSync(candidate.dir);
      } catch (err) {
        if (errno(err) === 'EEXIST') continue; // another live copy of our pid's name (e.g. in a worker): next suffix
        throw fsError(err, candidate.dir);
      }
      inst = candidate;
    }
    if (!inst) throw new DropwatchError('E_STATE', `too many tracefs instances named ${prefix}-${pid}`);
    live.add(inst);
    try {
      if (!isRealDir(inst.dir)) throw new DropwatchError('E_IO', `${inst.dir} is not a directory after mkdir`);
      if (!fs.existsSync(inst.eventFile('format'))) {
        throw new DropwatchError('E_EVENT_MISSING', `tracepoint skb:kfree_skb not found in ${inst.dir}/events`);
      }
      inst.write('trace_clock', opts.traceClock ?? 'mono');
      if (opts.bufferSizeKb !== undefined)
        inst.write('buffer_size_kb', String(Math.max(4, Math.floor(opts.bufferSizeKb))));
    } catch (err) {
      inst.remove();
      throw err;
    }
    return inst;
  }

  path(rel: string): string {
    return path.join(this.dir, rel);
  }

  eventFile(file: string): string {
    return path.join(this.dir, EVENT, file);
  }

  read(rel: string): string {
    try {
      return fs.readFileSync(this.path(rel), 'utf8');
    } catch (err) {
      throw fsError(err, this.path(rel));
    }
  }

  write(rel: string, value: string): void {
    try {
      fs.writeFileSync(this.path(rel), value);
    } catch (err) {
      throw fsError(err, this.path(rel));
    }
  }

  cpus(): number[] {
    return listCpus(this.dir);
  }

  setEventEnabled(on: boolean): void {
    this.write(`${EVENT}/enable`, on ? '1' : '0');
  }

  /** Installs a kernel-side filter; the kernel's complaint (from error_log) becomes E_BAD_INPUT. */
  setFilter(expr: string): void {
    if (/[\n\0]/.test(expr)) throw new DropwatchError('E_BAD_INPUT', 'kernel filter must be one line');
    try {
      fs.writeFileSync(this.path('error_log'), ''); // truncating clears it, so the entry we read back is ours
    } catch {
      // Older kernels lack error_log; we fall back to the errno alone.
    }
    try {
      fs.writeFileSync(this.eventFile('filter'), expr);
    } catch (err) {
      if (errno(err) !== 'EINVAL') throw fsError(err, this.eventFile('filter'));
      let log: ReturnType<typeof parseLastErrorLog> = null;
      try {
        log = parseLastErrorLog(fs.readFileSync(this.path('error_log'), 'utf8'));
      } catch {
        log = null;
      }
      const detail = log
        ? `${log.message}${log.column !== null ? ` at column ${log.column}` : ''}`
        : 'Invalid argument';
      throw new DropwatchError('E_BAD_INPUT', `kernel rejected filter "${expr}": ${detail}`, { cause: err });
    }
  }

  clearFilter(): void {
    this.write(`${EVENT}/filter`, '0');
  }

  /** Sets a trace option of this instance (`options/<name>`), e.g. stacktrace. */
  setOption(name: string, on: boolean): void {
    this.write(`options/${name}`, on ? '1' : '0');
  }

  /** The filter the kernel holds now ('none' when there is none). */
  filter(): string {
    return this.read(`${EVENT}/filter`).trim();
  }

  openRaw(cpu: number): number {
    const p = this.path(`per_cpu/cpu${cpu}/trace_pipe_raw`);
    try {
      // Non-blocking: a thread blocked in read() here can neither be interrupted nor let the instance go.
      const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      this.fds.add(fd);
      return fd;
    } catch (err) {
      throw fsError(err, p);
    }
  }

  closeFds(): void {
    for (const fd of this.fds) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already closed; nothing else to release.
      }
    }
    this.fds.clear();
  }

  /** Disables the event, closes every descriptor and removes the directory. Idempotent and synchronous. */
  remove(): void {
    if (this.removed) return;
    this.closeFds();
    try {
      fs.writeFileSync(this.eventFile('enable'), '0');
    } catch {
      // Gone already, or never enabled.
    }
    try {
      fs.rmdirSync(this.dir);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw fsError(err, this.dir);
    }
    this.removed = true;
    live.delete(this);
  }

  get isRemoved(): boolean {
    return this.removed;
  }
}

/**
 * Best-effort synchronous cleanup for a process 'exit' handler: closes descriptors, removes every instance this
 * process still has, and unmounts tracefs if we mounted it. Never throws.
 */
export function cleanupTracefsSync(): void {
  for (const inst of [...live]) {
    try {
      inst.remove();
    } catch {
      // Exit path: nothing more we can do.
    }
  }
  if (ourMount !== null && unmount(ourMount.path)) ourMount = null;
}
