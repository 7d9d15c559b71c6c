// Why /proc/kallsyms shows zeros: kernel.kptr_restrict for everyone, or a missing CAP_SYSLOG. The kernel shows real
// addresses when kptr_restrict is 0 and perf_event_paranoid at most 1, or kptr_restrict is at most 1 and the reader
// holds CAP_SYSLOG in the initial user namespace; never when kptr_restrict is 2 (kallsyms_show_value()).
import { readFileSync } from 'node:fs';

export interface AddressVisibility {
  /** kernel.kptr_restrict, or null when it cannot be read. */
  kptrRestrict: number | null;
  /** kernel.perf_event_paranoid, or null. */
  perfEventParanoid: number | null;
  /** Whether CAP_SYSLOG is in this process's effective set (any user namespace), or null. */
  capSyslog: boolean | null;
}

const CAP_SYSLOG = 34n;

/** The end of `kernel symbol addresses are hidden: …`: what hides them, from the facts at hand. */
export function hiddenCause(v: AddressVisibility): string {
  const { kptrRestrict: kptr, perfEventParanoid: perf, capSyslog } = v;
  if (kptr === null || capSyslog === null) return 'kernel.kptr_restrict, or CAP_SYSLOG missing';
  if (kptr >= 2) return `kernel.kptr_restrict=${kptr} hides them from every process, root included`;
  const settings = kptr === 0 && perf !== null ? `kernel.kptr_restrict=0, kernel.perf_event_paranoid=${perf}` : null;
  if (!capSyslog) return `this process lacks CAP_SYSLOG (${settings ?? `kernel.kptr_restrict=${kptr}`})`;
  return `CAP_SYSLOG is not held in the initial user namespace (a container?), which ${settings ?? `kernel.kptr_restrict=${kptr}`} requires`;
}

function number(text: string): number | null {
  const n = Number(text.trim());
  return Number.isInteger(n) ? n : null;
}

/** Reads the facts from /proc; each that cannot be read is null. */
export function readAddressVisibility(
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): AddressVisibility {
  const attempt = <T>(fn: () => T): T | null => {
    try {
      return fn();
    } catch {
      return null;
    }
  };
  return {
    kptrRestrict: attempt(() => number(read('/proc/sys/kernel/kptr_restrict'))),
    perfEventParanoid: attempt(() => number(read('/proc/sys/kernel/perf_event_paranoid'))),
    capSyslog: attempt(() => {
      const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(read('/proc/self/status'));
      return m ? ((BigInt(`0x${m[1]}`) >> CAP_SYSLOG) & 1n) === 1n : null;
    }),
  };
}
