// Loads the netlink addon (native/netlink.cc) from build/Release and types its surface.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DropwatchError } from '../errors/index.js';

/** An Error from the addon: `code` is the errno name ('ENOBUFS', 'EPERM', ...), `errno` is positive. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/**
 * One call per wake-up of the receive loop: its datagrams back to back in one Buffer, datagram i ending at ends[i].
 * drops is the kernel's cumulative sk_drops (u32), -1 if unreadable.
 */
export type NativeBatchCallback = (
  err: NativeError | null,
  datagrams: Buffer,
  ends: number[],
  groups: number[],
  enobufs: number,
  truncated: number,
  drops: number,
) => void;

export interface NativeSocket {
  readonly fd: number;
  bind(groups?: number): void;
  portId(): number;
  setsockopt(level: number, name: number, value: number): void;
  getsockopt(level: number, name: number): number;
  drops(): number;
  send(data: Uint8Array, pid?: number, groups?: number): number;
  start(callback: NativeBatchCallback): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NativeAddon {
  NetlinkSocket: new (protocol: number, options?: { scratchSize?: number; batchSize?: number }) => NativeSocket;
  /** Bumped when the calls between the addon and this file change (native/netlink.cc kAbiVersion). */
  abiVersion?: number;
}

const ABI_VERSION = 2;

const ADDON = join('build', 'Release', 'netlink_native.node');

let cached: NativeAddon | undefined;

/** The package root is the nearest ancestor holding build/Release (dist/src/netlink when compiled, src/netlink from source). */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      const addon = createRequire(import.meta.url)(candidate) as NativeAddon;
      // A build left from an older checkout would hand datagrams over in another shape: refuse it by name.
      if (addon.abiVersion !== ABI_VERSION)
        throw new DropwatchError('E_IO', `netlink addon ${candidate} is out of date: run \`npm run build:native\``);
      cached = addon;
      return cached;
    }
    dir = dirname(dir);
  }
  throw new DropwatchError('E_IO', `netlink addon ${ADDON} is not built: run \`npm run build:native\``);
}

export function isNativeError(err: unknown): err is NativeError {
  return err instanceof Error && typeof (err as Partial<NativeError>).errno === 'number';
}
