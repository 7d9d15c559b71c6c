// The header decoder: a dropped packet's bytes, from the MAC header on as NET_DM sends them, to its flow.

import { ipv4Text, ipv6Text } from './address.js';
import {
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_AH,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  IPV6_DSTOPTS,
  IPV6_FRAGMENT,
  IPV6_HOPOPTS,
  IPV6_NONXT,
  IPV6_ROUTING,
  VLAN_TPIDS,
  ipProtocolName,
} from './protocols.js';
import type { Flow } from './types.js';

/** Tags past this many are not read: real frames carry one or two, and each tag would grow `vlans`. */
export const MAX_VLANS = 8;

const IPPROTO_SCTP = 132;
const IPPROTO_DCCP = 33;

const be16 = (b: Uint8Array, off: number): number => (b[off]! << 8) | b[off + 1]!;

function emptyFlow(): Flow {
  return { l3: null, src: null, dst: null, l4: null, sport: null, dport: null, vlans: [], stopped: null };
}

/**
 * Decodes the headers of one packet. `protocol` is the skb's protocol (NET_DM's PROTO attribute, an EtherType): the
 * bytes start at the MAC header, but a device without one (a tunnel, ARPHRD_NONE) puts the network header first, and
 * only `protocol` says what it is. Without `protocol` the bytes are taken as an Ethernet frame.
 *
 * Never throws and never reads outside `bytes`: what cannot be decoded, because the bytes end early (`set trunc`) or
 * a header is malformed, is said in `stopped`, and the fields decoded before it are kept.
 */
export function decodeFlow(bytes: Uint8Array, protocol?: number): Flow {
  const f = emptyFlow();
  switch (startOf(bytes, protocol)) {
    case 'ethernet':
      ethernet(bytes, f);
      break;
    case 'ipv4':
      ipv4(bytes, 0, f);
      break;
    case 'ipv6':
      ipv6(bytes, 0, f);
      break;
    case null:
      f.stopped = `the bytes start with neither an Ethernet header nor the header of protocol ${hex4(protocol ?? 0)}`;
  }
  return f;
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

/** What the first byte is the start of: an Ethernet header, or an IP header with no MAC header before it. */
function startOf(b: Uint8Array, protocol: number | undefined): 'ethernet' | 'ipv4' | 'ipv6' | null {
  if (protocol === undefined) return 'ethernet';
  const etherType = b.length >= 14 ? be16(b, 12) : -1;
  // The EtherType the skb's protocol names, where an Ethernet header has it, is the strongest sign.
  if (etherType === protocol) return 'ethernet';
  const version = b.length > 0 ? b[0]! >> 4 : -1;
  if (protocol === ETH_P_IP && version === 4) return 'ipv4';
  if (protocol === ETH_P_IPV6 && version === 6) return 'ipv6';
  // The skb's protocol can name what is under VLAN tags, or differ from an Ethernet header that is there all the same.
  if (etherType === ETH_P_IP || etherType === ETH_P_IPV6 || etherType === ETH_P_ARP || VLAN_TPIDS.has(etherType))
    return 'ethernet';
  // Too short to tell: most devices have an Ethernet header, and it says it is cut short.
  if (b.length < 14) return 'ethernet';
  return null;
}

function ethernet(b: Uint8Array, f: Flow): void {
  if (b.length < 14) {
    f.stopped = 'truncated in the Ethernet header';
    return;
  }
  let type = be16(b, 12);
  let off = 14;
  while (VLAN_TPIDS.has(type)) {
    if (f.vlans.length === MAX_VLANS) {
      f.stopped = `more than ${MAX_VLANS} VLAN tags`;
      return;
    }
    if (b.length - off < 4) {
      f.stopped = 'truncated in a VLAN tag';
      return;
    }
    f.vlans.push(be16(b, off) & 0x0fff);
    type = be16(b, off + 2);
    off += 4;
  }
  f.etherType = type;
  if (type === ETH_P_IP) ipv4(b, off, f);
  else if (type === ETH_P_IPV6) ipv6(b, off, f);
  else if (type === ETH_P_ARP) arp(b, off, f);
}

/** Says where decoding stopped for a header that does not fit before `limit`: the capture's end or the IP length's. */
function cut(b: Uint8Array, limit: number, header: string, f: Flow): void {
  f.stopped =
    limit < b.length ? `the ${header} header runs past the IP packet's length` : `truncated in the ${header} header`;
}

function ipv4(b: Uint8Array, off: number, f: Flow): void {
  f.l3 = 'ipv4';
  const avail = b.length - off;
  if (avail < 1) {
    f.stopped = 'truncated in the IPv4 header';
    return;
  }
  const version = b[off]! >> 4;
  if (version !== 4) {
    f.stopped = `IP version ${version} where an IPv4 header should be`;
    return;
  }
  // What is there of the fixed header is kept, so a packet cut inside it still shows its addresses.
  if (avail >= 10) f.l4 = ipProtocolName(b[off + 9]!);
  if (avail >= 16) f.src = ipv4Text(b, off + 12);
  if (avail >= 20) f.dst = ipv4Text(b, off + 16);
  if (avail < 20) {
    f.stopped = 'truncated in the IPv4 header';
    return;
  }
  const headerLen = (b[off]! & 0x0f) * 4;
  if (headerLen < 20) {
    f.stopped = `IPv4 header length ${headerLen} is under 20`;
    return;
  }
  // A total length of 0 is a large GSO packet (BIG TCP): its length is not in the header.
  const total = be16(b, off + 2);
  if (total !== 0 && total < headerLen) {
    f.stopped = `IPv4 total length ${total} is under its header length ${headerLen}`;
    return;
  }
  if (avail < headerLen) {
    f.stopped = 'truncated in the IPv4 header';
    return;
  }
  const frag = be16(b, off + 6);
  const fragOffset = (frag & 0x1fff) * 8;
  const more = (frag & 0x2000) !== 0;
  if (fragOffset !== 0 || more) f.fragment = { offset: fragOffset, more };
  const payloadLen = total === 0 ? null : total - headerLen;
  // A later fragment carries the middle of the transport payload: no transport header, so no ports.
  if (fragOffset !== 0) {
    if (payloadLen !== null) f.length = payloadLen;
    return;
  }
  const limit = total === 0 ? b.length : Math.min(b.length, off + total);
  ipPayload(b, off + headerLen, limit, b[off + 9]!, payloadLen, false, f);
}

const IPV6_EXTENSIONS: ReadonlyMap<number, string> = new Map([
  [IPV6_HOPOPTS, 'IPv6 hop-by-hop options'],
  [IPV6_ROUTING, 'IPv6 routing'],
  [IPV6_FRAGMENT, 'IPv6 fragment'],
  [IPV6_DSTOPTS, 'IPv6 destination options'],
]);

function ipv6(b: Uint8Array, off: number, f: Flow): void {
  f.l3 = 'ipv6';
  const avail = b.length - off;
  if (avail < 1) {
    f.stopped = 'truncated in the IPv6 header';
    return;
  }
  const version = b[off]! >> 4;
  if (version !== 6) {
    f.stopped = `IP version ${version} where an IPv6 header should be`;
    return;
  }
  if (avail >= 24) f.src = ipv6Text(b, off + 8);
  if (avail >= 40) f.dst = ipv6Text(b, off + 24);
  if (avail < 40) {
    f.stopped = 'truncated in the IPv6 header';
    return;
  }
  // A payload length of 0 is a jumbogram or a large GSO packet (BIG TCP): its length is not in the header.
  const payloadLen = be16(b, off + 4);
  const limit = payloadLen === 0 ? b.length : Math.min(b.length, off + 40 + payloadLen);
  let remaining: number | null = payloadLen === 0 ? null : payloadLen;
  let next = b[off + 6]!;
  let p = off + 40;
  for (;;) {
    const extension = IPV6_EXTENSIONS.get(next);
    if (extension === undefined) break;
    if (limit - p < 8) {
      cut(b, limit, extension, f);
      return;
    }
    const len = next === IPV6_FRAGMENT ? 8 : (b[p + 1]! + 1) * 8;
    if (limit - p < len) {
      cut(b, limit, extension, f);
      return;
    }
    if (next === IPV6_FRAGMENT) {
      const field = be16(b, p + 2);
      f.fragment = { offset: field & 0xfff8, more: (field & 1) !== 0 };
    }
    const header = next;
    next = b[p]!;
    p += len;
    if (remaining !== null) remaining -= len;
    if (header === IPV6_FRAGMENT && f.fragment !== undefined && f.fragment.offset !== 0) {
      // A later fragment: the headers after this one are in the first fragment.
      f.l4 = ipProtocolName(next);
      if (remaining !== null) f.length = remaining;
      return;
    }
  }
  if (next === IPV6_NONXT) {
    f.l4 = ipProtocolName(next);
    return;
  }
  ipPayload(b, p, limit, next, remaining, true, f);
}

/** The headers above IP from `p` on: AH, then the transport. `payloadLen` is what the IP header says is left. */
function ipPayload(
  b: Uint8Array,
  p: number,
  limit: number,
  proto: number,
  payloadLen: number | null,
  v6: boolean,
  f: Flow,
): void {
  let next = proto;
  let left = payloadLen;
  // AH authenticates the packet and says what follows it; its length is in 32-bit words, less 2.
  while (next === IPPROTO_AH) {
    if (limit - p < 2) {
      cut(b, limit, 'AH', f);
      return;
    }
    const len = (b[p + 1]! + 2) * 4;
    if (limit - p < len) {
      cut(b, limit, 'AH', f);
      return;
    }
    next = b[p]!;
    p += len;
    if (left !== null) left -= len;
  }
  if (left !== null && left < 0) {
    f.stopped = "the extension headers run past the IP packet's length";
    return;
  }
  f.l4 = ipProtocolName(next);
  switch (next) {
    case IPPROTO_TCP:
      tcp(b, p, limit, left, f);
      return;
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
      udp(b, p, limit, next, left, v6, f);
      return;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      icmp(b, p, limit, next, left, f);
      return;
    case IPPROTO_SCTP:
    case IPPROTO_DCCP:
      sctpOrDccp(b, p, limit, next, left, f);
      return;
    default:
      // ESP's payload is encrypted, and the rest are not decoded further: the protocol and its length are the flow.
      if (left !== null) f.length = left;
  }
}

/** `left` is the IP payload's length from `p` on, null when the IP header does not say (BIG TCP, jumbograms). */
function tcp(b: Uint8Array, p: number, limit: number, left: number | null, f: Flow): void {
  const avail = limit - p;
  if (avail >= 4) ports(b, p, f);
  if (avail < 20) {
    cut(b, limit, 'TCP', f);
    return;
  }
  const headerLen = (b[p + 12]! >> 4) * 4;
  f.tcpFlags = b[p + 13]!;
  if (headerLen < 20) {
    f.stopped = `TCP header length ${headerLen} is under 20`;
    return;
  }
  if (left !== null) {
    if (left < headerLen) {
      f.stopped = "the TCP header runs past the IP packet's length";
      return;
    }
    f.length = left - headerLen;
  }
  if (avail < headerLen) cut(b, limit, 'TCP', f);
}

/** UDP or UDP-Lite (`proto`); `v6` because a UDP length of 0 means a jumbogram only in IPv6. */
function udp(b: Uint8Array, p: number, limit: number, proto: number, left: number | null, v6: boolean, f: Flow): void {
  const avail = limit - p;
  if (avail >= 4) ports(b, p, f);
  if (avail < 8) {
    cut(b, limit, proto === IPPROTO_UDP ? 'UDP' : 'UDP-Lite', f);
    return;
  }
  // UDP-Lite's length field is its checksum coverage; its length is the IP payload's.
  const udpLen = proto === IPPROTO_UDP ? be16(b, p + 4) : left;
  if (udpLen === null) return;
  if (udpLen >= 8) f.length = udpLen - 8;
  else if (!(udpLen === 0 && v6)) f.stopped = `UDP length ${udpLen} is under 8`;
  // 0 in IPv6 is a jumbogram's: the length is the IP payload's.
  else if (left !== null) f.length = left - 8;
}

/** ICMP or ICMPv6 (`proto`). */
function icmp(b: Uint8Array, p: number, limit: number, proto: number, left: number | null, f: Flow): void {
  const avail = limit - p;
  if (avail >= 2) {
    f.icmpType = b[p]!;
    f.icmpCode = b[p + 1]!;
  }
  if (left !== null) f.length = left;
  // Type, code and checksum; the rest of the header depends on the type.
  if (avail < 4) cut(b, limit, proto === IPPROTO_ICMP ? 'ICMP' : 'ICMPv6', f);
}

/** SCTP or DCCP (`proto`): both start with the two ports, and only those are read. */
function sctpOrDccp(b: Uint8Array, p: number, limit: number, proto: number, left: number | null, f: Flow): void {
  const avail = limit - p;
  if (avail >= 4) ports(b, p, f);
  if (left !== null) f.length = left;
  if (avail < 12) cut(b, limit, proto === IPPROTO_SCTP ? 'SCTP' : 'DCCP', f);
}

function ports(b: Uint8Array, p: number, f: Flow): void {
  f.sport = be16(b, p);
  f.dport = be16(b, p + 2);
}

function arp(b: Uint8Array, off: number, f: Flow): void {
  f.l3 = 'arp';
  const avail = b.length - off;
  if (avail < 8) {
    f.stopped = 'truncated in the ARP header';
    return;
  }
  const protoType = be16(b, off + 2);
  const hlen = b[off + 4]!;
  const plen = b[off + 5]!;
  f.arpOp = be16(b, off + 6);
  const total = 8 + 2 * hlen + 2 * plen;
  f.length = total;
  // Sender and target protocol addresses, where they are IPv4 ones.
  if (protoType === ETH_P_IP && plen === 4) {
    if (avail >= 8 + hlen + 4) f.src = ipv4Text(b, off + 8 + hlen);
    if (avail >= total) f.dst = ipv4Text(b, off + 8 + 2 * hlen + 4);
  }
  if (avail < total) f.stopped = 'truncated in the ARP header';
}
