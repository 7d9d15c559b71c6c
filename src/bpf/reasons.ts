// The drop-reason subsystems' names from the running kernel's BTF and its loaded modules' (/sys/kernel/btf), read
// when the bpf source opens: the file reads around the pure reader in src/bpf/btf.ts.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isReasonEnum, parseBtf, subsystemReasons, type Btf, type BtfEnum } from './btf.js';

const BTF_DIR = '/sys/kernel/btf';
/** Kernels before 6.4 have no subsystems: their BTF is not walked. */
const SUBSYS_NAME = Buffer.from('skb_drop_reason_subsys\0');
/** Only a module whose strings end a name so may hold a subsystem's enum. */
const ENUM_SUFFIX = Buffer.from('_drop_reason\0');
const SKB = Buffer.from('skb');

/**
 * [value, name] of each subsystem reason named in the kernel's BTF (`vmlinuxPath`, else `dir`/vmlinux) and, when
 * reading `dir`, in each loaded module's split BTF there. What cannot be read stays unnamed (UNKNOWN(subsystem:reason)):
 * the core reasons come from the addon, and a missing subsystem name never stops a run.
 */
export async function readSubsystemReasons(vmlinuxPath?: string, dir = BTF_DIR): Promise<[number, string][]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(vmlinuxPath ?? join(dir, 'vmlinux'));
  } catch {
    return [];
  }
  const modules = vmlinuxPath === undefined ? await moduleCandidates(dir) : [];
  // Walked only when a subsystem's enum may be there: built in, or in a loaded module.
  if (!bytes.includes(SUBSYS_NAME) || (!namesSubsystemEnum(bytes) && modules.length === 0)) return [];
  let kernel: Btf;
  try {
    kernel = parseBtf(bytes, isReasonEnum);
  } catch {
    return [];
  }
  const enums: BtfEnum[] = [...kernel.enums];
  for (const module of modules) {
    try {
      enums.push(...parseBtf(module, isReasonEnum, kernel).enums);
    } catch {
      // Not BTF after all: its reasons stay unnamed.
    }
  }
  return subsystemReasons(
    kernel.enums.find((e) => e.name === 'skb_drop_reason_subsys'),
    enums,
  );
}

/** Whether a string other than skb_drop_reason ends in _drop_reason: an enum a built-in subsystem may have named. */
function namesSubsystemEnum(bytes: Buffer): boolean {
  for (let at = bytes.indexOf(ENUM_SUFFIX); at >= 0; at = bytes.indexOf(ENUM_SUFFIX, at + 1))
    if (bytes[at - 1] !== 0 && !bytes.subarray(at - 3, at).equals(SKB)) return true;
  return false;
}

/** The loaded modules' BTF that may hold a subsystem's enum. */
async function moduleCandidates(dir: string): Promise<Buffer[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: Buffer[] = [];
  for (const name of names.filter((n) => n !== 'vmlinux')) {
    try {
      const bytes = await readFile(join(dir, name));
      if (bytes.includes(ENUM_SUFFIX)) out.push(bytes);
    } catch {
      // Unloaded while we read: its reasons stay unnamed.
    }
  }
  return out;
}
