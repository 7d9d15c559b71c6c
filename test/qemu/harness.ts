// Boots a Debian 6.1 cloud kernel under qemu (TCG) and runs one script inside it. The host kernel
// has no NET_DM family, so everything that needs the real drop_monitor module runs here.
//
// Usage from a test:
//   const why = await guestUnavailable();
//   if (why !== null) { t.skip(why); return; }
//   const r = await runInGuest('grep drop_monitor /proc/modules', { timeoutMs: 60_000 });
//   assert.equal(r.exitCode, 0);
//
// The initramfs is built from layers (see setup.sh): base (busybox, node, Debian dropwatch/dwdump,
// tcpdump, kernel modules, /init), project (package.json, bin, dist, build, production
// node_modules, test/fixtures under /project), optional python, and a small per-run layer written
// here (the script and any extra files). The kernel unpacks concatenated cpio archives in order,
// so only the per-run layer is new on each boot.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { integrationOnly } from '../helpers/suite.js';

export type GuestLang = 'sh' | 'node' | 'python';
export type GuestLayer = 'python' | 'hw';

export interface GuestRunOptions {
  /** Wall-clock limit for the whole boot + script + power-off; qemu is killed after it. Default 120 s. */
  timeoutMs?: number;
  /** How /init runs the script: `sh` (busybox ash, default), `node` (as an ES module) or `python`. */
  lang?: GuestLang;
  /** Extra files for the guest, keyed by absolute guest path (parent directories are created). */
  files?: Record<string, string | Uint8Array>;
  /** Variables exported to the script (written to /guest/env, sourced by /init). */
  env?: Record<string, string>;
  /**
   * Optional layers: `python` adds python3 and its stdlib (about 50 MB, so opt-in); `hw` adds psample.ko and
   * netdevsim.ko in /lib/modules and iproute2's devlink, for hardware drops (call layerUnavailable('hw') first).
   */
  layers?: GuestLayer[];
  /**
   * Kernel address randomization. Off by default (`nokaslr`) so kernel text addresses are the same
   * on every boot and match the ones recorded in test/fixtures/netdm (a PC there can be asserted
   * against the guest's /proc/kallsyms and dropwatch's output).
   */
  kaslr?: boolean;
  /** Guest memory in MiB (default 2048) and CPUs (default 2). */
  memMb?: number;
  smp?: number;
}

export interface GuestResult {
  /** The script's stdout, byte-exact (second serial port, raw mode), without the harness markers. */
  stdout: string;
  /** The script's stderr (third serial port), minus the harness's own marker lines. */
  stderr: string;
  /** The script's exit status. */
  exitCode: number;
  /** Whether /init's insmod of drop_monitor.ko succeeded, and its error otherwise. */
  moduleLoaded: boolean;
  moduleError: string | null;
  /** Kernel console (first serial port). Quiet unless something went wrong. */
  console: string;
  /** Boot to power-off, measured around qemu. */
  durationMs: number;
  /** The guest kernel's release (uname -r). */
  kernelRelease: string;
  /** In a boot shared by several sessions (runSessionsInGuest), guest uptime when this one started and ended, s. */
  sessionUptimeS?: [number, number];
}

/** The guest did not finish: timeout, panic, or power-off before the end marker. */
export class GuestError extends Error {
  /** The message without the console tail and stdout. */
  readonly reason: string;
  readonly consoleTail: string;
  readonly partialStdout: string;
  constructor(message: string, consoleTail: string, partialStdout: string) {
    super(`${message}\n--- guest console (tail) ---\n${consoleTail}\n--- guest stdout so far ---\n${partialStdout}`);
    this.name = 'GuestError';
    this.reason = message;
    this.consoleTail = consoleTail;
    this.partialStdout = partialStdout;
  }
}

const BEGIN = '@@DWQ-BEGIN@@\n';
const END_RE = /@@DWQ-END rc=(\d+)@@\n?$/;
const MODULE_RE = /^@@DWQ-MODULE drop_monitor (ok|failed: ([^\n]*))@@\n/m;

const qemuDir = join(projectRoot, 'test', 'qemu');
const setupScript = join(qemuDir, 'setup.sh');
export const cacheDir = join(qemuDir, 'cache');

function runSetup(step: string): { ok: boolean; vars: Record<string, string>; output: string } {
  const r = spawnSync('bash', [setupScript, step], {
    encoding: 'utf8',
    env: { ...process.env, DWQ_NODE: process.execPath },
    maxBuffer: 16 * 1024 * 1024,
  });
  const vars: Record<string, string> = {};
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]!] = m[2]!;
  }
  return { ok: r.status === 0, vars, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

interface Prepared {
  kernel: string;
  release: string;
  layers: Record<string, string>;
}
let kernelDir: string | null = null;
let unavailable: string | null | undefined;

/**
 * Null when the guest can run; otherwise a plain sentence naming what is missing, for t.skip().
 * Fetches the kernel into the cache on first call (a download of ~27 MB, once per machine).
 */
export async function guestUnavailable(): Promise<string | null> {
  integrationOnly('the qemu guest');
  if (unavailable !== undefined) return unavailable;
  const check = runSetup('check');
  if (!check.ok) {
    const missing = check.output
      .split('\n')
      .filter((l) => l.startsWith('missing: '))
      .map((l) => l.slice('missing: '.length));
    unavailable = `qemu guest unavailable, missing: ${missing.join('; ') || check.output.trim()}`;
    return unavailable;
  }
  const k = runSetup('kernel');
  const kdir = k.vars['KERNEL_DIR'];
  if (!k.ok || kdir === undefined) {
    unavailable = `qemu guest unavailable, could not get the kernel package: ${k.output.trim().split('\n').slice(-5).join(' | ')}`;
    return unavailable;
  }
  kernelDir = kdir;
  unavailable = null;
  return null;
}

/**
 * Null when an optional layer can be built; otherwise a sentence naming what is missing, for t.skip(). Builds the
 * layer now, outside the qemu lock: the hw layer's first build on a machine (kernel headers and source download,
 * netdevsim compile) must not hold up other tests' boots. A build that fails with its prerequisites present throws.
 */
export async function layerUnavailable(layer: GuestLayer): Promise<string | null> {
  const why = await guestUnavailable();
  if (why !== null) return why;
  if (layer === 'hw') {
    const check = runSetup('check-hw');
    if (!check.ok) {
      const missing = check.output
        .split('\n')
        .filter((l) => l.startsWith('missing: '))
        .map((l) => l.slice('missing: '.length));
      return `qemu hw layer unavailable, missing: ${missing.join('; ') || check.output.trim()}`;
    }
  }
  layerPath(layer);
  return null;
}

// Layers are (re)built under the host lock right before each boot: another process sharing the
// cache may replace a layer (and delete the old one) whenever dist/ changed, but only under the
// same lock, and this also picks up a dist/ rebuilt between two runs of one process.
function prepare(): Prepared {
  const all = runSetup('all');
  const kdir = all.vars['KERNEL_DIR'] ?? kernelDir;
  const base = all.vars['LAYER_BASE'];
  const project = all.vars['LAYER_PROJECT'];
  if (!all.ok || kdir === undefined || kdir === null || base === undefined || project === undefined) {
    throw new Error(`cannot build the initramfs: ${all.output.trim().split('\n').slice(-5).join(' | ')}`);
  }
  return {
    kernel: join(kdir, 'vmlinuz'),
    release: readFileSync(join(kdir, 'release'), 'utf8').trim(),
    layers: { base, project },
  };
}

function layerPath(name: GuestLayer): string {
  const r = runSetup(name);
  const p = r.vars[`LAYER_${name.toUpperCase()}`];
  if (!r.ok || p === undefined) throw new Error(`cannot build the ${name} layer: ${r.output.trim()}`);
  return p;
}

// --- newc cpio writer for the per-run layer (the kernel's format: "070701" + 13 hex fields) ---

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function newcEntry(name: string, mode: number, data: Buffer, ino: number): Buffer {
  const nameBuf = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBuf.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
  return Buffer.concat([
    header,
    nameBuf,
    Buffer.alloc(pad4(header.length + nameBuf.length)),
    data,
    Buffer.alloc(pad4(data.length)),
  ]);
}

/** Builds a newc archive; paths are relative (no leading slash), parents are added as directories. */
export function buildCpio(files: Map<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  let ino = 1;
  for (const [path, data] of files) {
    const segs = path.split('/');
    for (let i = 1; i < segs.length; i++) {
      const d = segs.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        parts.push(newcEntry(d, 0o040755, Buffer.alloc(0), ino++));
      }
    }
    parts.push(newcEntry(path, 0o100755, data, ino++));
  }
  parts.push(newcEntry('TRAILER!!!', 0, Buffer.alloc(0), 0));
  return Buffer.concat(parts);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// --- one qemu at a time: an in-process queue plus a lock file for other test processes ---

let queue: Promise<unknown> = Promise.resolve();
const lockPath = join(cacheDir, 'qemu.lock');

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const waitMarker = join(cacheDir, `qemu.wait.${process.pid}`);
let yieldUntil = 0;

// Other processes waiting for the lock leave qemu.wait.<pid> markers; a process that just released
// the lock lets them in before taking it again (its own runs are queued back to back, and a 500 ms
// poll would otherwise never win).
function othersWaiting(): boolean {
  try {
    return readdirSync(cacheDir).some((n) => {
      const m = /^qemu\.wait\.(\d+)$/.exec(n);
      if (m === null || Number(m[1]) === process.pid) return false;
      if (pidAlive(Number(m[1]))) return true;
      rmSync(join(cacheDir, n), { force: true });
      return false;
    });
  } catch {
    return false;
  }
}

async function withHostLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30 * 60_000;
  if (Date.now() < yieldUntil) await new Promise((r) => setTimeout(r, yieldUntil - Date.now()));
  let waiting = false;
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = 0;
      let ageMs = 0;
      try {
        owner = Number(readFileSync(lockPath, 'utf8').trim());
        ageMs = Date.now() - statSync(lockPath).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      // A lock whose owner died is stale; an empty one is being written (unless it is old).
      if (owner === 0 ? ageMs > 10_000 : !pidAlive(owner)) {
        rmSync(lockPath, { force: true });
        continue;
      }
      if (!waiting) {
        waiting = true;
        writeFileSync(waitMarker, '');
      }
      if (Date.now() > deadline) {
        rmSync(waitMarker, { force: true });
        throw new Error(`another qemu run (pid ${owner}) has held ${lockPath} for too long`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (waiting) rmSync(waitMarker, { force: true });
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
    if (othersWaiting()) yieldUntil = Date.now() + 1500;
  }
}

const running = new Set<number>();
let exitHook = false;
function trackChild(pid: number): void {
  running.add(pid);
  if (!exitHook) {
    exitHook = true;
    // Never leave a qemu behind when the test process ends early.
    process.on('exit', () => {
      for (const p of running) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      rmSync(waitMarker, { force: true });
      try {
        if (Number(readFileSync(lockPath, 'utf8')) === process.pid) rmSync(lockPath, { force: true });
      } catch {
        /* no lock */
      }
    });
  }
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

/**
 * Boots the guest, runs `script` as /guest/script.{sh,mjs,py} and resolves with its output once
 * the guest has powered off. Rejects with GuestError on a timeout (qemu is killed) or when the
 * guest ended without the end marker. Call guestUnavailable() first and skip when it says so.
 */
export function runInGuest(script: string, opts: GuestRunOptions = {}): Promise<GuestResult> {
  return holdingGuest((guest) => guest.run(script, opts));
}

/** One script of a shared boot (runSessionsInGuest): what runInGuest takes. */
export interface GuestSession {
  script: string;
  options?: GuestRunOptions;
}

/** A session's result, or the GuestError it would have rejected with in a boot of its own. */
export type SessionOutcome = GuestResult | GuestError;

/** What holdingGuest's callback may do while it holds the guest. */
export interface HeldGuest {
  /** One boot for one script: runInGuest. */
  run(script: string, opts?: GuestRunOptions): Promise<GuestResult>;
  /** One boot for several sessions; `build` names the project layer it carried (package.json, bin, dist, build). */
  runSessions(sessions: GuestSession[]): Promise<{ build: string; outcomes: SessionOutcome[] }>;
  /** The project layer a boot would carry now, as `build` above. */
  build(): string;
}

/**
 * Calls `fn` holding the guest: one qemu at a time (an in-process queue, then the lock file other test processes
 * take), so what `fn` reads and decides between boots, no other test's boot can change meanwhile.
 */
export function holdingGuest<T>(fn: (guest: HeldGuest) => Promise<T>): Promise<T> {
  integrationOnly('the qemu guest');
  const run = queue.then(() => withHostLock(() => fn(heldGuest)));
  queue = run.catch(() => undefined);
  return run;
}

/**
 * Boots once and runs the sessions one after another (test/qemu/guest/sessions.sh), each as if the boot were its own:
 * its files, env and timeout; the processes and modules the one before left gone, drop_monitor reloaded and /tmp
 * empty. A session that loads modules drop_monitor depends on cannot be undone that way: put it last. Every session
 * gets every layer any of them asks for; kaslr, memMb and smp must agree.
 */
export function runSessionsInGuest(sessions: GuestSession[]): Promise<SessionOutcome[]> {
  return holdingGuest(async (guest) => (await guest.runSessions(sessions)).outcomes);
}

const heldGuest: HeldGuest = {
  run: runOnce,
  runSessions: runSessionsOnce,
  build: () => {
    const r = runSetup('project');
    const p = r.vars['LAYER_PROJECT'];
    if (!r.ok || p === undefined) throw new Error(`cannot build the project layer: ${r.output.trim()}`);
    return p;
  },
};

function scriptExt(lang: GuestLang | undefined): string {
  return lang === 'node' ? 'mjs' : lang === 'python' ? 'py' : 'sh';
}

function envFile(env: Record<string, string>): Buffer {
  const lines = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad env name ${k}`);
    return `export ${k}=${shellQuote(v)}\n`;
  });
  return Buffer.from(lines.join(''));
}

/** opts.files as per-run layer entries: at their own paths, or under `under` (a session's files/ folder). */
function addExtraFiles(files: Map<string, Buffer>, opts: GuestRunOptions, under: string): void {
  for (const [path, data] of Object.entries(opts.files ?? {})) {
    if (!path.startsWith('/')) throw new Error(`guest file paths are absolute: ${path}`);
    const entry = under === '' ? path.slice(1) : `${under}${path}`;
    files.set(entry, typeof data === 'string' ? Buffer.from(data) : Buffer.from(data));
  }
}

async function runOnce(script: string, opts: GuestRunOptions = {}): Promise<GuestResult> {
  const why = await guestUnavailable();
  if (why !== null) throw new Error(why);
  const prepared = prepare();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const files = new Map<string, Buffer>();
  files.set(`guest/script.${scriptExt(opts.lang)}`, Buffer.from(script));
  // The shell helpers every guest script sources.
  files.set('guest/lib.sh', readFileSync(join(qemuDir, 'guest', 'lib.sh')));
  if (opts.env) files.set('guest/env', envFile(opts.env));
  addExtraFiles(files, opts, '');

  const boot = await bootGuest(prepared, files, opts.layers ?? [], opts, timeoutMs);
  const body = boot.begin >= 0 ? boot.rawOut.slice(boot.begin + BEGIN.length) : boot.rawOut;
  if (boot.startError !== null) throw new GuestError(boot.startError, boot.consoleTail, '');
  if (boot.timedOut)
    throw new GuestError(`guest timed out after ${timeoutMs} ms (qemu killed)`, boot.consoleTail, tail(body));
  const end = END_RE.exec(body);
  if (boot.begin < 0 || end === null) {
    throw new GuestError(`guest stopped without finishing (qemu exit ${boot.qemuExit})`, boot.consoleTail, tail(body));
  }
  return guestResult(body.slice(0, end.index), boot.rawErr, Number(end[1]), boot, prepared.release);
}

function guestResult(stdout: string, rawErr: string, exitCode: number, boot: Boot, release: string): GuestResult {
  const mod = MODULE_RE.exec(rawErr);
  return {
    stdout: Buffer.from(stdout, 'latin1').toString('utf8'),
    stderr: Buffer.from(rawErr.replace(/^@@DWQ-[^\n]*@@\n/gm, ''), 'latin1').toString('utf8'),
    exitCode,
    moduleLoaded: mod?.[1] === 'ok',
    moduleError: mod === null ? 'no module line from /init' : (mod[2] ?? null),
    console: boot.consoleText,
    durationMs: boot.durationMs,
    kernelRelease: release,
  };
}

async function runSessionsOnce(sessions: GuestSession[]): Promise<{ build: string; outcomes: SessionOutcome[] }> {
  const why = await guestUnavailable();
  if (why !== null) throw new Error(why);
  const opts = sessions.map((s) => s.options ?? {});
  for (const key of ['kaslr', 'memMb', 'smp'] as const) {
    if (new Set(opts.map((o) => o[key])).size > 1) throw new Error(`sessions of one boot differ in ${key}`);
  }
  const prepared = prepare();
  const files = new Map<string, Buffer>();
  files.set('guest/script.sh', readFileSync(join(qemuDir, 'guest', 'sessions.sh')));
  files.set('guest/lib.sh', readFileSync(join(qemuDir, 'guest', 'lib.sh')));
  sessions.forEach((s, i) => {
    const dir = `guest/sessions/${i + 1}`;
    const o = opts[i]!;
    files.set(`${dir}/script.${scriptExt(o.lang)}`, Buffer.from(s.script));
    if (o.env) files.set(`${dir}/env`, envFile(o.env));
    files.set(`${dir}/timeout`, Buffer.from(`${Math.ceil((o.timeoutMs ?? 120_000) / 1000)}\n`));
    addExtraFiles(files, o, `${dir}/files`);
  });
  const layers = [...new Set(opts.flatMap((o) => o.layers ?? []))];
  // Each session's limit held the boot it had to itself: their sum leaves the shared boot the same room.
  const timeoutMs = opts.reduce((sum, o) => sum + (o.timeoutMs ?? 120_000), 0);
  const boot = await bootGuest(prepared, files, layers, opts[0] ?? {}, timeoutMs);
  const parsed = parseSessions(boot.rawOut, boot.rawErr, sessions.length);
  const outcomes = parsed.map((p, i): SessionOutcome => {
    if (boot.startError !== null) return new GuestError(boot.startError, boot.consoleTail, '');
    const partial = tail(p.stdout ?? '');
    if (p.exitCode === undefined) {
      const why = boot.timedOut
        ? `guest timed out after ${timeoutMs} ms (qemu killed), the boot shared by ${sessions.length} sessions`
        : `guest stopped without finishing (qemu exit ${boot.qemuExit})`;
      return new GuestError(why, boot.consoleTail, partial);
    }
    if (p.timedOut) {
      const limit = opts[i]!.timeoutMs ?? 120_000;
      return new GuestError(`guest session timed out after ${limit} ms (its script killed)`, boot.consoleTail, partial);
    }
    const result = guestResult(p.stdout!, p.stderr, p.exitCode, boot, prepared.release);
    return { ...result, sessionUptimeS: p.uptimeS! };
  });
  return { build: prepared.layers['project']!, outcomes };
}

/** One session's part of a shared boot's output (test/qemu/guest/sessions.sh frames them). */
export interface ParsedSession {
  /** Its stdout, absent when its start frame never came; cut short when its end frame did not. */
  stdout?: string;
  /** Its stderr with the frames' lines (the first session's includes /init's). */
  stderr: string;
  /** Absent when its end frame never came. */
  exitCode?: number;
  timedOut: boolean;
  uptimeS?: [number, number];
}

/** Splits the guest's raw stdout and stderr (serial ports 2 and 3) into `count` sessions. */
export function parseSessions(rawOut: string, rawErr: string, count: number): ParsedSession[] {
  const errParts = rawErr.split(/^@@DWQ-SESSION (\d+)@@\n/m);
  const errOf = new Map<number, string>();
  for (let k = 1; k + 1 < errParts.length; k += 2) errOf.set(Number(errParts[k]), errParts[k + 1]!);
  const out: ParsedSession[] = [];
  let from = 0;
  for (let n = 1; n <= count; n++) {
    const stderr = `${n === 1 ? errParts[0]! : ''}${errOf.get(n) ?? ''}`;
    const frame = `@@DWQ-SESSION ${n}@@\n`;
    const start = rawOut.indexOf(frame, from);
    if (start < 0) {
      out.push({ stderr, timedOut: false });
      continue;
    }
    const bodyStart = start + frame.length;
    const endRe = new RegExp(`@@DWQ-SESSION-END ${n} rc=(\\d+) timeout=([01]) up=([\\d.]+) ([\\d.]+)@@\\n`, 'g');
    endRe.lastIndex = bodyStart;
    const end = endRe.exec(rawOut);
    if (end === null) {
      out.push({ stdout: rawOut.slice(bodyStart), stderr, timedOut: false });
      from = rawOut.length;
      continue;
    }
    out.push({
      stdout: rawOut.slice(bodyStart, end.index),
      stderr,
      exitCode: Number(end[1]),
      timedOut: end[2] === '1',
      uptimeS: [Number(end[3]), Number(end[4])],
    });
    from = end.index + end[0].length;
  }
  return out;
}

/** A boot as it ended: the serial ports' text and how qemu ended. */
interface Boot {
  /** Why qemu could not start, or null. */
  startError: string | null;
  timedOut: boolean;
  qemuExit: string;
  rawOut: string;
  rawErr: string;
  /** Where /init's begin marker is in rawOut, -1 when it never came. */
  begin: number;
  consoleText: string;
  consoleTail: string;
  durationMs: number;
}

async function bootGuest(
  prepared: Prepared,
  files: Map<string, Buffer>,
  extraLayers: GuestLayer[],
  opts: GuestRunOptions,
  timeoutMs: number,
): Promise<Boot> {
  const layers = [prepared.layers['base']!, prepared.layers['project']!];
  for (const l of extraLayers) layers.push(layerPath(l));
  const work = mkdtempSync(join(tmpdir(), 'dwq-'));
  try {
    // Concatenated archives must each start on a 4-byte boundary for the kernel's unpacker.
    const initrd = join(work, 'initrd.cpio');
    const chunks: Buffer[] = [];
    for (const l of layers) {
      const b = readFileSync(l);
      chunks.push(b, Buffer.alloc(pad4(b.length)));
    }
    chunks.push(buildCpio(files));
    writeFileSync(initrd, Buffer.concat(chunks));

    const ports = { con: join(work, 'console.txt'), out: join(work, 'stdout.txt'), err: join(work, 'stderr.txt') };
    const started = Date.now();
    const q = await runQemu(qemuArgs(prepared, initrd, ports, opts), timeoutMs);
    const durationMs = Date.now() - started;

    const consoleText = readOr(ports.con).replace(/\r/g, '');
    const rawOut = readOr(ports.out);
    const rawErr = readOr(ports.err);
    const consoleTail = tail(
      `${consoleText}${q.output ? `\n[qemu] ${q.output}` : ''}${rawErr ? `\n[stderr] ${tail(rawErr, 20)}` : ''}`,
    );
    return {
      startError: q.outcome instanceof Error ? `cannot start qemu: ${q.outcome.message}` : null,
      timedOut: q.outcome === 'timeout',
      qemuExit: q.exit,
      rawOut,
      rawErr,
      begin: rawOut.indexOf(BEGIN),
      consoleText,
      consoleTail,
      durationMs,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function qemuArgs(
  prepared: Prepared,
  initrd: string,
  ports: { con: string; out: string; err: string },
  opts: GuestRunOptions,
): string[] {
  return [
    '-accel',
    'tcg', // KVM exists here but dies with an emulation failure on this kernel
    '-m',
    String(opts.memMb ?? 2048),
    '-smp',
    String(opts.smp ?? 2),
    '-display',
    'none',
    '-monitor',
    'none',
    '-no-reboot',
    '-nodefaults',
    '-kernel',
    prepared.kernel,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 quiet loglevel=0 panic=-1 8250.nr_uarts=4${opts.kaslr === true ? '' : ' nokaslr'}`,
    '-chardev',
    `file,id=con,path=${ports.con}`,
    '-serial',
    'chardev:con',
    '-chardev',
    `file,id=out,path=${ports.out}`,
    '-serial',
    'chardev:out',
    '-chardev',
    `file,id=err,path=${ports.err}`,
    '-serial',
    'chardev:err',
  ];
}

/** Runs qemu to its exit, or kills it at `timeoutMs` and waits for it to be gone. */
async function runQemu(
  args: string[],
  timeoutMs: number,
): Promise<{ outcome: 'exit' | 'timeout' | Error; exit: string; output: string }> {
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) trackChild(child.pid);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));

  const outcome = await new Promise<'exit' | 'timeout' | Error>((resolvePromise) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolvePromise('timeout');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolvePromise(e);
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolvePromise('exit');
    });
  });
  if (outcome === 'timeout') {
    // Wait for the kill to land so no qemu outlives the call.
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
  }
  if (child.pid !== undefined) running.delete(child.pid);
  return { outcome, exit: String(child.exitCode ?? child.signalCode), output };
}

/** A guest run kept for reading: its transcript's folder, and its sections by name (a missing one fails the test). */
export interface GuestTranscript {
  work: string;
  sec: (name: string) => string[];
}

/**
 * Keeps the guest's transcript in a fresh folder under the system's temporary one (named `prefix`-…), says where and
 * how long each step took, and checks that drop_monitor was loaded.
 */
export function keepTranscript(
  t: { diagnostic(message: string): void },
  r: GuestResult,
  prefix: string,
): GuestTranscript {
  const work = mkdtempSync(join(tmpdir(), `${prefix}-`));
  writeFileSync(join(work, 'transcript.txt'), `${r.stdout}\n--- stderr ---\n${r.stderr}`);
  const shared =
    r.sessionUptimeS === undefined
      ? ''
      : ` (a boot shared with other sessions; this one from uptime ${r.sessionUptimeS[0]} s to ${r.sessionUptimeS[1]} s)`;
  t.diagnostic(`guest ${r.kernelRelease}: ${r.durationMs} ms${shared}, transcript in ${work}`);
  t.diagnostic(`guest uptime (s) at the end of each step: ${timings(r.stdout)}`);
  if (!r.moduleLoaded) throw new Error(r.moduleError ?? 'drop_monitor not loaded');
  const s = sections(r.stdout);
  return {
    work,
    sec: (name) => {
      const v = s.get(name);
      if (v === undefined) throw new Error(`no section ${name} in the guest output (see ${work})`);
      return v;
    },
  };
}

/** Decodes base64 that a guest script printed between `@@NAME-BEGIN@@` and `@@NAME-END@@` lines. */
export function extractBase64(stdout: string, name: string): Buffer {
  const m = new RegExp(`@@${name}-BEGIN@@\\n([\\s\\S]*?)@@${name}-END@@`).exec(stdout);
  if (m === null) throw new Error(`no ${name} block in guest output`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** Guest scripts print each result between "@@S name@@" and "@@E@@": name → its lines. */
export function sections(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const re = /^@@S (\S+)@@\n([\s\S]*?)^@@E@@$/gm;
  for (const m of stdout.matchAll(re)) out.set(m[1]!, m[2]!.replace(/\n$/, '').split('\n'));
  return out;
}

/** "name@seconds" for each "@@T name seconds@@" line: guest uptime when each section was done. */
export function timings(stdout: string): string {
  return [...stdout.matchAll(/^@@T (\S+) ([\d.]+)@@$/gm)].map((m) => `${m[1]}@${m[2]}`).join(' ');
}

/** The kernel the guest boots (after guestUnavailable() returned null). */
export function kernelInfo(): { release: string; kernel: string } | null {
  if (kernelDir === null) return null;
  return { release: readFileSync(join(kernelDir, 'release'), 'utf8').trim(), kernel: join(kernelDir, 'vmlinuz') };
}
