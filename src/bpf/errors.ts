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

const FALLBACK = 'use -b tracefs';
const EPERM = 1;
const ENOENT = 2;
const ESRCH = 3;
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

function noBtf(log: string): boolean {
  return /vmlinux BTF|kernel BTF|failed to find valid kernel BTF|btf_custom_path|failed to parse target BTF/i.test(log);
}

/**
 * The DropwatchError for an addon failure. Always E_BPF_MISSING, missing privileges included: `auto` then goes on to
 * tracefs, which a process without CAP_BPF (a container, lockdown) may still be allowed.
 */
export function bpfError(failure: BpfFailure): DropwatchError {
  const { stage, errno, log } = failure;
  const cause = { cause: failure };
  if (errno === EPERM && stage !== 'open')
    return new DropwatchError(
      'E_BPF_MISSING',
      `the kernel refused to ${stage === 'attach' ? 'attach' : 'load'} a BPF program (${strerror(errno)}): ` +
        `it needs root, or CAP_BPF with CAP_PERFMON; ${FALLBACK}`,
      cause,
    );
  if (stage === 'btf' || noBtf(log))
    return new DropwatchError(
      'E_BPF_MISSING',
      `this kernel has no usable BTF (/sys/kernel/btf/vmlinux), which the bpf source needs; ${FALLBACK}`,
      cause,
    );
  const verifier = verifierReason(log);
  if (stage === 'load' && verifier !== null)
    return new DropwatchError(
      'E_BPF_MISSING',
      `the kernel's BPF verifier rejected dropwatch's program (${verifier}); ${FALLBACK}`,
      cause,
    );
  if (stage === 'load' && /failed to create map|map '[^']*': failed/.test(log))
    return new DropwatchError(
      'E_BPF_MISSING',
      `the kernel would not create dropwatch's BPF maps (${strerror(errno)}; before Linux 5.11 the locked-memory ` +
        `limit, ulimit -l, bounds them); ${FALLBACK}`,
      cause,
    );
  if (stage === 'open')
    return new DropwatchError(
      'E_BPF_MISSING',
      `the BPF object is corrupt or not dropwatch's (${strerror(errno)}): reinstall dropwatch; ${FALLBACK}`,
      cause,
    );
  if (stage === 'attach' && (errno === ENOENT || errno === ESRCH || errno === EINVAL))
    return new DropwatchError(
      'E_BPF_MISSING',
      `this kernel cannot attach a BPF program to skb:kfree_skb (${strerror(errno)}); ${FALLBACK}`,
      cause,
    );
  const what = stage === 'map' ? "read dropwatch's BPF maps" : `${stage} dropwatch's BPF program`;
  return new DropwatchError('E_BPF_MISSING', `cannot ${what} (${strerror(errno)}); ${FALLBACK}`, cause);
}
