// What the header decoder finds in a dropped packet's bytes: the flow a user filters and reads by.

/** Network-layer protocol, as the filter's `l3` field and JSON's `l3` name it. */
export type L3 = 'ipv4' | 'ipv6' | 'arp';

/**
 * The flow of one dropped packet, decoded from its bytes (MAC header on). Every field is null when the packet does not
 * have it or the bytes end before it.
 */
export interface Flow {
  l3: L3 | null;
  /** Source and destination address as text: dotted IPv4, RFC 5952 IPv6; for ARP the sender and target IPv4. */
  src: string | null;
  dst: string | null;
  /** Transport protocol, lower case: tcp, udp, icmp, icmpv6, another /etc/protocols name (gre, esp), or the number. */
  l4: string | null;
  sport: number | null;
  dport: number | null;
  /** 802.1Q/802.1ad VLAN ids, outermost first; empty when untagged. */
  vlans: number[];
  /** Where decoding stopped early when the bytes were cut short (`set trunc`) or malformed; null when complete. */
  stopped: string | null;
  // The details below are what the text line prints after the protocol; each is absent when the packet has none.
  /** The EtherType under the VLAN tags, when the bytes start with an Ethernet header. */
  etherType?: number;
  /**
   * The length tcpdump prints, from the headers (not the captured bytes): the payload after a TCP or UDP header, the
   * whole message for ICMP, ICMPv6 and other transports, the ARP message.
   */
  length?: number;
  /** TCP flag bits (byte 13 of the header: FIN 0x01 … CWR 0x80). */
  tcpFlags?: number;
  /** ICMP or ICMPv6 type and code. */
  icmpType?: number;
  icmpCode?: number;
  /** ARP operation (1 request, 2 reply). */
  arpOp?: number;
  /** Part of a fragmented IP packet: its offset in bytes, and whether more fragments follow. Ports only at 0. */
  fragment?: { offset: number; more: boolean };
}
