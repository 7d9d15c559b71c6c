// Pure: the kernel's drop time (NET_DM_ATTR_TIMESTAMP) of a raw NET_DM PACKET_ALERT, as dwdump's record time.
//
// It runs once per captured packet, so it reads bytes in place: it walks the attribute headers only (the payload is
// skipped in one step) and builds no DataView, attribute object or BigInt. It never throws: anything that is not a
// well-framed PACKET_ALERT with a timestamp gives null, and the caller falls back to the receive time.
import { endianness } from 'node:os';
import { NET_DM_ATTR_TIMESTAMP, NET_DM_CMD_PACKET_ALERT } from '../netdm/codec.js';
import { align4, GENL_HDRLEN, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from '../netlink/codec.js';
import { timestampFromNs, type Timestamp } from '../pcap/index.js';

const LE = endianness() === 'LE';
const U64_LEN = 8;

function u16(b: Uint8Array, at: number, le: boolean): number {
  return le ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number, le: boolean): number {
  return le
    ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
    : ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/**
 * The TIMESTAMP of one whole netlink message (nlmsghdr first) when it is a PACKET_ALERT of the NET_DM family
 * `familyId`, as a pcap record time; null for any other message, a malformed one, or a time pcap cannot hold. The
 * framing checks are the netlink codec's (a message decodePacketAlert rejects for its framing gives null here), and a
 * repeated TIMESTAMP counts by its last copy, as nla_parse keeps it.
 */
export function packetAlertDropTime(message: Uint8Array, familyId: number): Timestamp | null {
  if (message.length < NLMSG_HDRLEN + GENL_HDRLEN) return null;
  const len = u32(message, 0, LE);
  if (len < NLMSG_HDRLEN + GENL_HDRLEN || len > message.length) return null;
  if (u16(message, 4, LE) !== familyId || message[NLMSG_HDRLEN] !== NET_DM_CMD_PACKET_ALERT) return null;
  let at = -1;
  let le = LE;
  let off = NLMSG_HDRLEN + GENL_HDRLEN;
  while (off < len) {
    if (len - off < NLA_HDRLEN) return null;
    const nlaLen = u16(message, off, LE);
    if (nlaLen < NLA_HDRLEN || nlaLen > len - off) return null;
    const rawType = u16(message, off + 2, LE);
    if ((rawType & NLA_TYPE_MASK) === NET_DM_ATTR_TIMESTAMP) {
      at = nlaLen - NLA_HDRLEN >= U64_LEN ? off + NLA_HDRLEN : -1;
      le = LE && (rawType & NLA_F_NET_BYTEORDER) === 0;
    }
    off += align4(nlaLen);
  }
  if (at < 0) return null;
  return le
    ? timestampFromNs(u32(message, at + 4, true), u32(message, at, true))
    : timestampFromNs(u32(message, at, false), u32(message, at + 4, false));
}
