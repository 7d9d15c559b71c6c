// What a failed BPF load, attach or read means, in one sentence that names the cause and the fallback (pure): the
// addon collects libbpf's messages instead of printing them, and only the line that says why is kept here.
import { DropwatchError, strerror } from '../errors/index.js';

/** The fields of the addon's errors this reads (src/bpf/native.ts). */
export interface BpfFailure {
  stage: string;
  errno: number;
  log: string;
  message: string;
}

/** What the process knows about itself that a failure's words may name. */
export interface BpfFailureContext {
  /** This process's memory cgroup (memoryCgroup() of /proc/self/cgroup), null when unknown. */
  memoryCgroup?: string | null;
}

const FALLBACK = 'use -b tracefs';
const EPERM = 1;
const ENOENT = 2;
const ESRCH = 3;
const ENOMEM = 12;
const EINVAL = 22;

/** The verifier's own complaint: the last line of its log before the instruction count. */
export function verifierReason(log: string): string | null {
  const start = log.indexOf('-- BEGIN PROG LOAD LOG --');
  if (start < 0) return null;
  const end = log.indexOf('-- END PROG LOAD LOG --', start);
  const lines = log
    .slice(start, end < 0 ? undefined : end)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('--') && !/^processed \d+ insns/.test(l) && !/^(\d+:|;)/.test(l));
  return lines.at(-1)?.slice(0, 200) ?? null;
}

/** The memory cgroup in /proc/PID/cgroup's text: cgroup v1's memory controller line, else v2's unified one. */
export function memoryCgroup(procCgroup: string): string | null {
  let unified: string | null = null;
  for (const line of procCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1]!.split(',').includes('memory')) return m[2]!;
    if (m[1] === '') unified = m[2]!;
  }
  return unified;
}

function noBtf(log: string): boolean {
  return /vmlinux BTF|kernel BTF|failed to find valid kernel BTF|btf_custom_path|failed to parse target BTF/i.test(log);
}

const mapFailed = (log: string): boolean => /failed to create map|map '[^']*': failed/.test(log);

const missing = (message: string, why: string, cause: BpfFailure): DropwatchError =>
  new DropwatchError('E_BPF_MISSING', message, { cause, why });

/** Maps refused for memory: the memory cgroup's limit (Linux 5.11 on), or RLIMIT_MEMLOCK before, which libbpf names. */
function memoryLimit(failure: BpfFailure, context: BpfFailureContext): DropwatchError | null {
  const { stage, errno, log } = failure;
  if (stage !== 'load' || !mapFailed(log)) return null;
  const head = `the kernel would not create dropwatch's BPF maps (${strerror(errno)})`;
  const memlock = /try raising 'ulimit -l'\? current value: ([^\n]+)/.exec(log);
  if (errno === EPERM && memlock)
    return missing(
      `${head}: before Linux 5.11 they count against the locked-memory limit (ulimit -l, RLIMIT_MEMLOCK: ` +
        `${memlock[1]!.trim()}), which is too low; raise it or ${FALLBACK}`,
      'the locked-memory limit (ulimit -l) leaves no room for its maps',
      failure,
    );
  if (errno !== ENOMEM) return null;
  const cgroup = context.memoryCgroup ? ` (${context.memoryCgroup})` : '';
  return missing(
    `${head}: since Linux 5.11 they count against the memory limit of this process's memory cgroup${cgroup}, ` +
      `which leaves too little room; raise that limit or ${FALLBACK}`,
    'the memory limit of its memory cgroup leaves no room for its maps',
    failure,
  );
}

/**
 * The DropwatchError for an addon failure. Always E_BPF_MISSING, missing privileges included: `auto` then goes on to
 * tracefs, which a process without CAP_BPF (a container, lockdown) may still be allowed.
 */
export function bpfError(failure: BpfFailure, context: BpfFailureContext = {}): DropwatchError {
  const { stage, errno, log } = failure;
  const memory = memoryLimit(failure, context);
  if (memory) return memory;
  if (errno === EPERM && stage !== 'open')
    return missing(
      `the kernel refused to ${stage === 'attach' ? 'attach' : 'load'} a BPF program (${strerror(errno)}): ` +
        `it needs root, or CAP_BPF with CAP_PERFMON; ${FALLBACK}`,
      'no privilege to load BPF programs (CAP_BPF, CAP_PERFMON)',
      failure,
    );
  if (stage === 'btf' || noBtf(log))
    return missing(
      `this kernel has no usable BTF (/sys/kernel/btf/vmlinux), which the bpf source needs; ${FALLBACK}`,
      'no usable BTF',
      failure,
    );
  const verifier = verifierReason(log);
  if (stage === 'load' && verifier !== null)
    return missing(
      `the kernel's BPF verifier rejected dropwatch's program (${verifier}); ${FALLBACK}`,
      "the kernel's verifier rejected its program",
      failure,
    );
  if (stage === 'load' && mapFailed(log))
    return missing(
      `the kernel would not create dropwatch's BPF maps (${strerror(errno)}); ${FALLBACK}`,
      `the kernel would not create its maps (${strerror(errno)})`,
      failure,
    );
  if (stage === 'open')
    return missing(
      `the BPF object is corrupt or not dropwatch's (${strerror(errno)}): reinstall dropwatch; ${FALLBACK}`,
      'its BPF object is corrupt',
      failure,
    );
  if (stage === 'attach' && (errno === ENOENT || errno === ESRCH || errno === EINVAL))
    return missing(
      `this kernel cannot attach a BPF program to skb:kfree_skb (${strerror(errno)}); ${FALLBACK}`,
      'no BPF attachment to skb:kfree_skb',
      failure,
    );
  const what = stage === 'map' ? "read dropwatch's BPF maps" : `${stage} dropwatch's BPF program`;
  return missing(`cannot ${what} (${strerror(errno)}); ${FALLBACK}`, `cannot ${what} (${strerror(errno)})`, failure);
}
