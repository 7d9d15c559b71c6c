// /proc/net/netlink read for tests: the kernel's own Drops column, to cross-check NetlinkSocket.lost().
import { readFileSync } from 'node:fs';

/** The Drops column of /proc/net/netlink for one socket, or undefined. */
export function procNetlinkDrops(protocol: number, portId: number): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/netlink', 'utf8');
  } catch {
    return undefined;
  }
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 10 && Number(f[1]) === protocol && Number(f[2]) === portId) return Number(f[8]);
  }
  return undefined;
}
