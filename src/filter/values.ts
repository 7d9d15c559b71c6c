// The literals of the flow fields: network-layer names, IP protocol names and numbers, and IP addresses.

import { isIP, SocketAddress } from 'node:net';

/** `l3` values; `ip` is read as ipv4, as `protocol == ip` is. */
export const L3_NAMES: ReadonlyMap<string, string> = new Map([
  ['ipv4', 'ipv4'],
  ['ip', 'ipv4'],
  ['ipv6', 'ipv6'],
  ['arp', 'arp'],
]);

/**
 * IP protocol numbers by name: IANA's keywords in lower case, the Flow type's `icmpv6` for 58, and a few common
 * aliases. The first name of each number is the one format() writes.
 */
const L4_TABLE: readonly [number, readonly string[]][] = [
  [0, ['hopopt']],
  [1, ['icmp']],
  [2, ['igmp']],
  [4, ['ipv4', 'ipip']],
  [6, ['tcp']],
  [8, ['egp']],
  [17, ['udp']],
  [33, ['dccp']],
  [41, ['ipv6']],
  [43, ['ipv6-route']],
  [44, ['ipv6-frag']],
  [46, ['rsvp']],
  [47, ['gre']],
  [50, ['esp']],
  [51, ['ah']],
  [58, ['icmpv6', 'ipv6-icmp']],
  [59, ['ipv6-nonxt']],
  [60, ['ipv6-opts']],
  [89, ['ospf', 'ospfigp']],
  [103, ['pim']],
  [112, ['vrrp']],
  [115, ['l2tp']],
  [132, ['sctp']],
  [136, ['udplite']],
  [137, ['mpls-in-ip']],
  [143, ['ethernet']],
];

export const L4_BY_NAME: ReadonlyMap<string, number> = new Map(
  L4_TABLE.flatMap(([n, names]) => names.map((name) => [name, n] as const)),
);
const L4_NAME: ReadonlyMap<number, string> = new Map(L4_TABLE.map(([n, names]) => [n, names[0]!]));

/** The name format() writes for an IP protocol number, or the number in decimal. */
export function l4Name(n: number): string {
  return L4_NAME.get(n) ?? String(n);
}

/** The number behind a decoded packet's `l4` text (a name or decimal), or null when it names nothing we know. */
export function l4Number(text: string): number | null {
  if (text.length > 0 && text.length <= 3 && [...text].every((c) => c >= '0' && c <= '9')) {
    const n = Number(text);
    return n <= 255 ? n : null;
  }
  return L4_BY_NAME.get(text.toLowerCase()) ?? null;
}

export type Family = 'ipv4' | 'ipv6';

/** The family of an address already known to be valid: only IPv6 text has colons. */
export function familyOf(address: string): Family {
  return address.includes(':') ? 'ipv6' : 'ipv4';
}

/**
 * An IPv4 or IPv6 address in canonical text (dotted quad; RFC 5952 as inet_ntop writes it), or null when `text` is
 * not one. Zone ids (`fe80::1%eth0`) are refused: a dropped packet's header carries none to compare with.
 */
export function canonicalAddress(text: string): string | null {
  const version = isIP(text);
  if (version === 0 || text.includes('%')) return null;
  return new SocketAddress({ address: text, family: version === 4 ? 'ipv4' : 'ipv6' }).address;
}

/** The longest prefix of an address of this family. */
export const maxPrefix = (family: Family): number => (family === 'ipv4' ? 32 : 128);
