// One qemu boot for the qemu sessions of a test run: the first of their test files to run boots once for every one
// of them that this run will run, and leaves the others their results in a ledger that only this run reads.
//
// A session is a guest script and its options (its test file asserts on its result). The first file calls
// sessionResult(name): under the guest lock, it runs, in one boot (runSessionsInGuest), its own session and those of
// the other files on the command line of the same `node --test` process (its parent) that are available here and
// not yet run, and writes their outcomes to test/qemu/cache/ledger-<runner pid>-<runner start>.json. Each later file
// takes its own outcome from there (and removes it), if it was made from the same session and the same build; else
// it boots for itself. Run without a test runner above it, a file boots for its own session alone, as before.
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import {
  cacheDir,
  GuestError,
  guestUnavailable,
  holdingGuest,
  layerUnavailable,
  type GuestResult,
  type GuestSession,
  type HeldGuest,
  type SessionOutcome,
} from './harness.js';
import { projectRoot } from '../helpers/paths.js';

/** Datagrams each capture of the dwdump session sends (its env DW_N; the test counts records by it). */
export const DWDUMP_DATAGRAMS = 50;

export type SessionName = 'netdm' | 'dwdump' | 'bpf' | 'hardware' | 'bpf-hardware';

interface SessionSpec {
  /** The compiled test file that asserts on it, from the project root. */
  file: string;
  /** Null when it can run here, else why not (the test's skip message). */
  unavailable: () => Promise<string | null>;
  session: () => GuestSession;
}

const guest = (...parts: string[]): string => readFileSync(join(projectRoot, 'test', ...parts), 'utf8');

/**
 * In boot order. Each session gets a fresh drop_monitor, but not a kernel without the modules the ones before loaded:
 * hardware (psample, netdevsim) goes last.
 */
const SESSIONS: Record<SessionName, SessionSpec> = {
  netdm: {
    file: 'dist/test/netdm/qemu.int.test.js',
    unavailable: async () =>
      (await guestUnavailable()) ??
      (existsSync(join(projectRoot, 'bin', 'dropwatch')) ? null : 'bin/dropwatch is not there yet'),
    session: () => ({
      script: guest('netdm', 'guest', 'session.sh'),
      options: {
        files: Object.fromEntries(
          ['send.sh', 'checks.mjs', 'flows.sh'].map((f) => [`/guest/${f}`, guest('netdm', 'guest', f)]),
        ),
        timeoutMs: 420_000,
      },
    }),
  },
  dwdump: {
    file: 'dist/test/dwdump/qemu.int.test.js',
    unavailable: guestUnavailable,
    session: () => ({
      script: guest('dwdump', 'guest', 'session.sh'),
      options: {
        files: { '/guest/send.sh': guest('dwdump', 'guest', 'send.sh') },
        env: { DW_N: String(DWDUMP_DATAGRAMS) },
        timeoutMs: 600_000,
      },
    }),
  },
  bpf: {
    file: 'dist/test/bpf/qemu.int.test.js',
    unavailable: async () =>
      (await guestUnavailable()) ??
      (existsSync(join(projectRoot, 'build', 'Release', 'bpf_native.node'))
        ? null
        : 'the bpf addon is not built (it needs clang, llvm and libbpf-dev)'),
    session: () => ({
      script: guest('bpf', 'guest', 'session.sh'),
      options: {
        files: {
          ...Object.fromEntries(['send.sh', 'flows.sh'].map((f) => [`/guest/${f}`, guest('netdm', 'guest', f)])),
          '/guest/send-indexed.sh': guest('dwdump', 'guest', 'send.sh'),
        },
        timeoutMs: 300_000,
      },
    }),
  },
  hardware: {
    file: 'dist/test/netdm/hardware.int.test.js',
    unavailable: () => layerUnavailable('hw'),
    session: () => ({
      script: guest('netdm', 'guest', 'hardware.sh'),
      options: {
        files: { '/guest/send.sh': guest('netdm', 'guest', 'send.sh') },
        layers: ['hw'],
        timeoutMs: 420_000,
      },
    }),
  },
  'bpf-hardware': {
    file: 'dist/test/bpf/hardware.int.test.js',
    unavailable: async () =>
      (await layerUnavailable('hw')) ??
      (existsSync(join(projectRoot, 'build', 'Release', 'bpf_native.node'))
        ? null
        : 'the bpf addon is not built (it needs clang, llvm and libbpf-dev)'),
    session: () => ({
      script: guest('bpf', 'guest', 'hardware.sh'),
      options: {
        files: { '/guest/send.sh': guest('netdm', 'guest', 'send.sh') },
        layers: ['hw'],
        timeoutMs: 360_000,
      },
    }),
  },
};
const ORDER = Object.keys(SESSIONS) as SessionName[];

/** Null when the session can run here, else why not, for t.skip(). */
export function sessionUnavailable(name: SessionName): Promise<string | null> {
  return SESSIONS[name].unavailable();
}

/** The `node --test` process running this file: its identity (pid and start time) and the files it was given. */
interface TestRun {
  id: string;
  files: Set<string>;
}

/** /proc/PID/stat's start time (clock ticks after boot): with the pid, it names one process. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function testRun(): TestRun | null {
  // node --test runs each file in a child of its own, with this variable set.
  if (process.env['NODE_TEST_CONTEXT'] === undefined) return null;
  const pid = process.ppid;
  const start = startTime(pid);
  if (start === null) return null;
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1);
    return {
      id: `${pid}-${start}`,
      files: new Set(args.filter((a) => !a.startsWith('-')).map((a) => resolve(cwd, a))),
    };
  } catch {
    return null;
  }
}

/** An outcome as the ledger keeps it (JSON): a result, or a GuestError's parts. */
type Stored = { result: GuestResult } | { error: { reason: string; consoleTail: string; partialStdout: string } };

interface Ledger {
  /** The project layer the boot carried: the build. */
  build: string;
  /** Per session run: its spec's hash and outcome, or null once its file took it. */
  sessions: Partial<Record<SessionName, { spec: string; outcome: Stored } | null>>;
}

const ledgerPath = (run: TestRun): string => join(cacheDir, `ledger-${run.id}.json`);

function readLedger(run: TestRun): Ledger | null {
  try {
    return JSON.parse(readFileSync(ledgerPath(run), 'utf8')) as Ledger;
  } catch {
    return null;
  }
}

/** Ledgers of test runs that have ended: nobody will take what is left in them. */
function removeStaleLedgers(): void {
  for (const name of readdirSync(cacheDir)) {
    const m = /^ledger-(\d+)-(\d+)\.json$/.exec(name);
    if (m !== null && startTime(Number(m[1])) !== m[2]) rmSync(join(cacheDir, name), { force: true });
  }
}

function specHash(s: GuestSession): string {
  return createHash('sha256').update(JSON.stringify(s)).digest('hex');
}

function store(o: SessionOutcome): Stored {
  return o instanceof GuestError
    ? { error: { reason: o.reason, consoleTail: o.consoleTail, partialStdout: o.partialStdout } }
    : { result: o };
}

function unwrap(s: Stored): GuestResult {
  if ('result' in s) return s.result;
  throw new GuestError(s.error.reason, s.error.consoleTail, s.error.partialStdout);
}

/**
 * The result of session `name` (call sessionUnavailable first and skip when it says so): from this run's ledger if an
 * earlier file's boot ran it, else from a boot of its own shared with the sessions of this run's files still to come.
 * Rejects with GuestError as runInGuest does.
 */
export async function sessionResult(name: SessionName): Promise<GuestResult> {
  const run = testRun();
  const own = SESSIONS[name].session();
  if (run === null) return holdingGuest((g) => g.run(own.script, own.options));
  // The availability checks build the hw layer: outside the lock, as a file of its own would. Not needed when an
  // earlier file's boot ran this session (read again under the lock).
  const others: SessionName[] = [];
  const ranAlready = Boolean(readLedger(run)?.sessions[name]);
  for (const n of ranAlready ? [] : ORDER) {
    if (n !== name && run.files.has(resolve(projectRoot, SESSIONS[n].file)) && (await sessionUnavailable(n)) === null)
      others.push(n);
  }
  return holdingGuest(async (g) => unwrap(await fromLedgerOrBoot(g, run, name, own, others)));
}

async function fromLedgerOrBoot(
  g: HeldGuest,
  run: TestRun,
  name: SessionName,
  own: GuestSession,
  others: SessionName[],
): Promise<Stored> {
  removeStaleLedgers();
  let ledger = readLedger(run);
  if (ledger !== null && ledger.build !== g.build()) ledger = null;
  const entry = ledger?.sessions[name];
  if (ledger !== null && entry && entry.spec === specHash(own)) {
    ledger.sessions[name] = null;
    if (Object.values(ledger.sessions).every((v) => v === null)) rmSync(ledgerPath(run), { force: true });
    else writeFileSync(ledgerPath(run), JSON.stringify(ledger));
    return entry.outcome;
  }
  const names = ORDER.filter((n) => n === name || (others.includes(n) && ledger?.sessions[n] === undefined));
  if (names.length === 1) return { result: await g.run(own.script, own.options) };
  const sessions = names.map((n) => (n === name ? own : SESSIONS[n].session()));
  const { build, outcomes } = await g.runSessions(sessions);
  const next: Ledger = { build, sessions: { ...(ledger?.sessions ?? {}) } };
  names.forEach((n, i) => {
    if (n !== name) next.sessions[n] = { spec: specHash(sessions[i]!), outcome: store(outcomes[i]!) };
  });
  writeFileSync(ledgerPath(run), JSON.stringify(next));
  return store(outcomes[names.indexOf(name)]!);
}
