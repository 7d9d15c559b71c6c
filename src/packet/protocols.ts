// Numbers the header decoder meets, and the names a user reads and filters by.

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
/** 802.1Q, 802.1ad and the older pre-standard QinQ tag: each is followed by a 2-byte TCI and the next EtherType. */
export const VLAN_TPIDS: ReadonlySet<number> = new Set([0x8100, 0x88a8, 0x9100]);

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_UDPLITE = 136;
/** IPv6 extension headers decoded past: hop-by-hop, routing, fragment, destination options. */
export const IPV6_HOPOPTS = 0;
export const IPV6_ROUTING = 43;
export const IPV6_FRAGMENT = 44;
export const IPV6_NONXT = 59;
export const IPV6_DSTOPTS = 60;

// /etc/protocols' (netbase) names, so `l4 == gre` reads as on the rest of the system; 58 is icmpv6, as the flow
// fields document it, and 0 is hopopt (netbase's `ip` would read as the network layer).
const IP_PROTOCOL_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'hopopt'],
  [1, 'icmp'],
  [2, 'igmp'],
  [4, 'ipencap'],
  [6, 'tcp'],
  [8, 'egp'],
  [17, 'udp'],
  [33, 'dccp'],
  [41, 'ipv6'],
  [43, 'ipv6-route'],
  [44, 'ipv6-frag'],
  [46, 'rsvp'],
  [47, 'gre'],
  [50, 'esp'],
  [51, 'ah'],
  [58, 'icmpv6'],
  [59, 'ipv6-nonxt'],
  [60, 'ipv6-opts'],
  [88, 'eigrp'],
  [89, 'ospf'],
  [94, 'ipip'],
  [97, 'etherip'],
  [98, 'encap'],
  [103, 'pim'],
  [108, 'ipcomp'],
  [112, 'vrrp'],
  [115, 'l2tp'],
  [124, 'isis'],
  [132, 'sctp'],
  [135, 'mobility-header'],
  [136, 'udplite'],
  [137, 'mpls-in-ip'],
  [139, 'hip'],
  [140, 'shim6'],
  [143, 'ethernet'],
]);

/** The transport protocol's name, or its number in decimal when it has no common name. */
export function ipProtocolName(proto: number): string {
  return IP_PROTOCOL_NAMES.get(proto) ?? String(proto);
}

const ICMP_TYPES: ReadonlyMap<number, string> = new Map([
  [0, 'echo reply'],
  [3, 'unreachable'],
  [4, 'source quench'],
  [5, 'redirect'],
  [8, 'echo request'],
  [9, 'router advertisement'],
  [10, 'router solicitation'],
  [11, 'time exceeded'],
  [12, 'parameter problem'],
  [13, 'timestamp request'],
  [14, 'timestamp reply'],
]);

const ICMPV6_TYPES: ReadonlyMap<number, string> = new Map([
  [1, 'unreachable'],
  [2, 'packet too big'],
  [3, 'time exceeded'],
  [4, 'parameter problem'],
  [128, 'echo request'],
  [129, 'echo reply'],
  [130, 'multicast listener query'],
  [131, 'multicast listener report'],
  [132, 'multicast listener done'],
  [133, 'router solicitation'],
  [134, 'router advertisement'],
  [135, 'neighbor solicitation'],
  [136, 'neighbor advertisement'],
  [137, 'redirect'],
  [143, 'multicast listener report v2'],
]);

/** The message name for an ICMP (`v6` false) or ICMPv6 type, or null when it has none here. */
export function icmpTypeName(type: number, v6: boolean): string | null {
  return (v6 ? ICMPV6_TYPES : ICMP_TYPES).get(type) ?? null;
}

const ARP_OPS: ReadonlyMap<number, string> = new Map([
  [1, 'Request'],
  [2, 'Reply'],
  [3, 'Reverse Request'],
  [4, 'Reverse Reply'],
]);

/** tcpdump's word for an ARP operation, or `op N`. */
export function arpOpName(op: number): string {
  return ARP_OPS.get(op) ?? `op ${op}`;
}

// tcpdump's letters in its order (print-tcp.c): FIN, SYN, RST, PUSH, ACK as '.', URG, ECE, CWR.
const TCP_FLAG_LETTERS: readonly (readonly [number, string])[] = [
  [0x01, 'F'],
  [0x02, 'S'],
  [0x04, 'R'],
  [0x08, 'P'],
  [0x10, '.'],
  [0x20, 'U'],
  [0x40, 'E'],
  [0x80, 'W'],
];

/** TCP flags as tcpdump writes them between `Flags [` and `]`: `S`, `S.`, `P.`, …; `none` when none is set. */
export function tcpFlagsText(flags: number): string {
  let s = '';
  for (const [bit, letter] of TCP_FLAG_LETTERS) if (flags & bit) s += letter;
  return s === '' ? 'none' : s;
}
