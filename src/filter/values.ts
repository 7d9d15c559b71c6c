// The literals of the flow fields: network-layer names, IP protocol names and numbers, and IP addresses.

import { isIP, SocketAddress } from 'node:net';
import { ipProtocolName } from '../packet/index.js';

/** `l3` values; `ip` is read as ipv4, as `protocol == ip` is. */
export const L3_NAMES: ReadonlyMap<string, string> = new Map([
  ['ipv4', 'ipv4'],
  ['ip', 'ipv4'],
  ['ipv6', 'ipv6'],
  ['arp', 'arp'],
]);

// IANA's keywords where the decoder's names (netbase's /etc/protocols) differ, so either spelling reads.
const L4_ALIASES: readonly [string, number][] = [
  ['ipv6-icmp', 58],
  ['ospfigp', 89],
];

/** IP protocol numbers by the names the decoder writes in `l4` (src/packet), and a few aliases. */
export const L4_BY_NAME: ReadonlyMap<string, number> = (() => {
  const byName = new Map<string, number>(L4_ALIASES);
  for (let n = 0; n <= 255; n++) {
    const name = ipProtocolName(n);
    if (name !== String(n)) byName.set(name, n);
  }
  return byName;
})();

/** The name format() writes for an IP protocol number (the one the flow line and JSON show), or the number. */
export const l4Name = ipProtocolName;

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
