// Types the netlink addon's surface (native/netlink.cc) and refuses a stale build; src/native/addon.ts finds it.

import { DropwatchError } from '../errors/index.js';
import { loadAddon } from '../native/addon.js';
import type { ErrnoError } from './endpoint.js';

/**
 * One call per wake-up of the receive loop: its datagrams back to back in one Buffer, datagram i ending at ends[i].
 * drops is the kernel's cumulative sk_drops (u32), -1 if unreadable.
 */
export type NativeBatchCallback = (
  err: ErrnoError | null,
  datagrams: Buffer,
  ends: number[],
  groups: number[],
  enobufs: number,
  truncated: number,
  drops: number,
) => void;

/** The addon's socket; a failed call throws an ErrnoError. NetlinkSocket is the endpoint over it. */
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

let cached: NativeAddon | undefined;

/** The addon, refused when it was built from an older checkout. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const { addon, path } = loadAddon();
  const native = addon as NativeAddon;
  // A build left from an older checkout would hand datagrams over in another shape: refuse it by name.
  if (native.abiVersion !== ABI_VERSION)
    throw new DropwatchError('E_IO', `netlink addon ${path} is out of date: run \`npm run build:native\``);
  cached = native;
  return cached;
}
