// Loads the BPF source's addon (native/bpf.cc, built only where clang and libbpf-dev were): a local build first, then
// the prebuilt one the packed tarball carries in prebuilds/linux-<arch>/bpf/. Either missing: E_BPF_MISSING.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DropwatchError } from '../errors/index.js';

/** What the addon's BpfProgram does; every method throws an Error with `stage`, `errno` and `log` on failure. */
export interface NativeBpfProgram {
  attach(): void;
  detach(): void;
  /** mode: 0 summary, 1 packet; captureLen: bytes per packet; wakeupBytes: ring data past which the reader wakes. */
  configure(mode: number, captureLen: number, wakeupBytes: number): void;
  /** Switches count tables and returns the replaced one's counts as 80-byte records (src/bpf/decode.ts). */
  drain(): Buffer;
  /** Packet records waiting in the ring: all, or the first ones past maxBytes, the rest left (src/bpf/decode.ts). */
  consume(maxBytes: number): Buffer;
  /**
   * Calls onWake on the event loop each time the kernel wakes the ring's readers (once per crossing of wakeupBytes);
   * until unwatch(), the watch keeps the event loop alive.
   */
  watch(onWake: () => void): void;
  unwatch(): void;
  /** Cumulative: [table full, ring full, recursion misses]. */
  lost(): bigint[];
  /**
   * Installs a kernel filter: `word` holds the DW_FILTER_* flags of bpf/dropwatch.h, `values` struct dw_filter_key
   * records (src/bpf/filter.ts) for the sets it tests. Each drop is tested against the old filter or the new one, whole.
   */
  filter(word: number, values: Uint32Array): void;
  /** Cumulative: drops the kernel filter kept from us. */
  filtered(): bigint;
  /**
   * Call chains: from now on one drop in `stride` per CPU is a candidate, and at most `limit` chains are taken until the
   * next call (stride 0: none).
   */
  stackBudget(stride: number, limit: number): void;
  /** Takes out the sampled chains (summary samples and packet notes) as chain records (src/bpf/chains.ts). */
  chains(): Buffer;
  close(): void;
  /** Whether this kernel has devlink:devlink_trap_report (hardware drops); its program is loaded only then. */
  hardware(): boolean;
  attachTraps(): void;
  detachTraps(): void;
  /** Every (trap, group, input port) counted since loading, as 160-byte records whose counts only grow (src/bpf/traps.ts). */
  traps(): Buffer;
  /** Trapped packet records waiting in their ring, up to about maxBytes (src/bpf/traps.ts). */
  consumeTraps(maxBytes: number): Buffer;
  /** Cumulative: [trap table full, trap ring full, trap program recursion misses]. */
  trapsLost(): bigint[];
}

export interface BpfAddon {
  abiVersion: number;
  packetRecordBytes: number;
  /** The enum skb_drop_reason's members from the kernel's BTF (or the file at btfPath). */
  dropReasons(btfPath?: string): [number, string][];
  BpfProgram: new (object?: Buffer, btfPath?: string, ringBytes?: number) => NativeBpfProgram;
}

/** The failure an addon call throws. */
export interface BpfNativeError extends Error {
  stage: 'open' | 'load' | 'attach' | 'btf' | 'map';
  errno: number;
  log: string;
}

const ABI_VERSION = 7;
// dist/src/bpf/native.js → the package root.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CANDIDATES = [
  join(ROOT, 'build', 'Release', 'bpf_native.node'),
  join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'bpf', 'bpf_native.node'),
];

let cached: BpfAddon | undefined;

export function loadBpfAddon(): BpfAddon {
  if (cached) return cached;
  const path = CANDIDATES.find((p) => existsSync(p));
  if (path === undefined)
    throw new DropwatchError('E_BPF_MISSING', 'no BPF addon: it is built only where clang and libbpf-dev are');
  let addon: BpfAddon;
  try {
    addon = createRequire(import.meta.url)(path) as BpfAddon;
  } catch (err) {
    // Most often libbpf.so.1 missing (Debian's libbpf1, which iproute2 depends on).
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new DropwatchError('E_BPF_MISSING', `cannot load the BPF addon ${path}: ${why}`, { cause: err });
  }
  if (addon.abiVersion !== ABI_VERSION)
    throw new DropwatchError('E_BPF_MISSING', `the BPF addon ${path} is from another version: rebuild it`);
  cached = addon;
  return addon;
}
