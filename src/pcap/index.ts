// A small pure writer (and reader, for tests and checks) of classic libpcap files: the global header, record headers
// and the Linux cooked (SLL) header that Wireshark's netlink dissector expects in front of each netlink message.
// No I/O here: callers get bytes and decide where they go.
//
// Layout (https://www.tcpdump.org/manpages/pcap-savefile.5.txt): a 24-byte global header (magic, version 2.4,
// thiszone, sigfigs, snaplen, linktype) then records of { ts_sec, ts_usec, incl_len, orig_len } + incl_len bytes.
// Every field is in the writer's byte order, which the magic announces; libpcap writes host order and so do we by
// default, so our files match dwdump's byte for byte on the same machine.

import { endianness } from 'node:os';

export const PCAP_MAGIC = 0xa1b2c3d4;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_GLOBAL_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

/** LINKTYPE_NETLINK (DLT_NETLINK): each record is a cooked header followed by netlink messages. */
export const LINKTYPE_NETLINK = 253;

/** struct linux_sll as dwdump writes it: 16 bytes, every field big-endian. */
export const SLL_HEADER_LEN = 16;
export const SLL_ADDR_LEN = 8;
/** PACKET_OUTGOING from linux/if_packet.h: dwdump marks every record so (direction is not meaningful here). */
export const PACKET_OUTGOING = 4;
/** ARPHRD_NETLINK from linux/if_arp.h. */
export const ARPHRD_NETLINK = 824;
/** AF_NETLINK: in the SLL protocol field, it tells the dissector the payload is netlink. */
export const AF_NETLINK = 16;

export const HOST_LITTLE_ENDIAN = endianness() === 'LE';

export interface GlobalHeader {
  /** Largest record the file may hold (readers size buffers from it). */
  snaplen: number;
  linktype: number;
  /** GMT offset of the timestamps in seconds; always 0 in practice. */
  thiszone?: number;
  sigfigs?: number;
  versionMajor?: number;
  versionMinor?: number;
}

/** Seconds and microseconds since the epoch, as classic pcap stores them. */
export interface Timestamp {
  sec: number;
  usec: number;
}

export interface PcapRecord {
  ts: Timestamp;
  /** Bytes on the wire; more than data.length when the record was cut at snaplen. */
  origLen: number;
  data: Uint8Array;
}

export interface SllHeader {
  pkttype: number;
  hatype: number;
  /** Link-layer address, at most 8 bytes; halen is its length. */
  addr?: Uint8Array;
  protocol: number;
}

function u32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`pcap: ${what} ${n} is not a u32`);
  return n;
}

function u16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`pcap: ${what} ${n} is not a u16`);
  return n;
}

export function encodeGlobalHeader(h: GlobalHeader, littleEndian = HOST_LITTLE_ENDIAN): Uint8Array {
  const out = new Uint8Array(PCAP_GLOBAL_HEADER_LEN);
  const v = new DataView(out.buffer);
  v.setUint32(0, PCAP_MAGIC, littleEndian);
  v.setUint16(4, u16(h.versionMajor ?? PCAP_VERSION_MAJOR, 'version'), littleEndian);
  v.setUint16(6, u16(h.versionMinor ?? PCAP_VERSION_MINOR, 'version'), littleEndian);
  v.setInt32(8, h.thiszone ?? 0, littleEndian);
  v.setUint32(12, u32(h.sigfigs ?? 0, 'sigfigs'), littleEndian);
  v.setUint32(16, u32(h.snaplen, 'snaplen'), littleEndian);
  v.setUint32(20, u32(h.linktype, 'linktype'), littleEndian);
  return out;
}

/** The 16-byte Linux cooked header; big-endian regardless of the file's byte order (it is packet data). */
export function encodeSll(h: SllHeader): Uint8Array {
  const addr = h.addr ?? new Uint8Array(0);
  if (addr.length > SLL_ADDR_LEN) throw new RangeError(`pcap: SLL address of ${addr.length} bytes (at most 8)`);
  const out = new Uint8Array(SLL_HEADER_LEN);
  const v = new DataView(out.buffer);
  v.setUint16(0, u16(h.pkttype, 'pkttype'), false);
  v.setUint16(2, u16(h.hatype, 'hatype'), false);
  v.setUint16(4, addr.length, false);
  out.set(addr, 6);
  v.setUint16(14, u16(h.protocol, 'protocol'), false);
  return out;
}

/** dwdump's cooked header: outgoing, ARPHRD_NETLINK, no address, AF_NETLINK. The same for every record. */
export const NETLINK_SLL: Uint8Array = encodeSll({
  pkttype: PACKET_OUTGOING,
  hatype: ARPHRD_NETLINK,
  protocol: AF_NETLINK,
});

/** A wall-clock time in milliseconds (fractions kept) as seconds + microseconds. */
export function timestampFromMs(ms: number): Timestamp {
  // Rounded: ms fractions come from floating point (x.832 may be x.83199…).
  const totalUs = Math.round(ms * 1000);
  return { sec: Math.floor(totalUs / 1_000_000), usec: totalUs % 1_000_000 };
}

// 2^32 ns = 4294967 µs + 296 ns: how the high word of a nanosecond count splits into microseconds.
const US_PER_2_32_NS = 4_294_967;
const NS_REST_PER_2_32_NS = 296;
// The first high word whose counts are past classic pcap's u32 seconds: 1e9 × 2^32 ns is exactly 2^32 s.
const FIRST_HIGH_PAST_U32_SECONDS = 1_000_000_000;

/**
 * A u64 count of nanoseconds since the epoch (a kernel ktime), given as its high and low 32 bits so that no BigInt is
 * made per record, as seconds + microseconds: the nanoseconds are cut off, as a microsecond pcap keeps them. Null
 * when it is past the record header's u32 seconds (early 2106).
 */
export function timestampFromNs(high: number, low: number): Timestamp | null {
  if (high >= FIRST_HIGH_PAST_U32_SECONDS) return null;
  // Every term stays below 2^53, so the arithmetic is exact.
  const us = high * US_PER_2_32_NS + Math.floor((high * NS_REST_PER_2_32_NS + low) / 1000);
  const usec = us % 1_000_000;
  return { sec: (us - usec) / 1_000_000, usec };
}

/**
 * One record: header + data parts (e.g. the cooked header then a netlink message), cut at snaplen with orig_len
 * keeping the full length, as a capture tool must (readers reject records longer than the file's snaplen).
 */
export function encodeRecord(
  parts: Uint8Array | readonly Uint8Array[],
  ts: Timestamp,
  snaplen: number,
  littleEndian = HOST_LITTLE_ENDIAN,
): Uint8Array {
  const list = parts instanceof Uint8Array ? [parts] : parts;
  let origLen = 0;
  for (const p of list) origLen += p.length;
  const inclLen = Math.min(origLen, snaplen);
  const out = new Uint8Array(PCAP_RECORD_HEADER_LEN + inclLen);
  const v = new DataView(out.buffer);
  v.setUint32(0, u32(ts.sec, 'ts_sec'), littleEndian);
  if (!Number.isInteger(ts.usec) || ts.usec < 0 || ts.usec >= 1_000_000)
    throw new RangeError(`pcap: ts_usec ${ts.usec} out of range`);
  v.setUint32(4, ts.usec, littleEndian);
  v.setUint32(8, inclLen, littleEndian);
  v.setUint32(12, u32(origLen, 'orig_len'), littleEndian);
  let off = PCAP_RECORD_HEADER_LEN;
  for (const p of list) {
    const n = Math.min(p.length, out.length - off);
    if (n <= 0) break;
    out.set(n === p.length ? p : p.subarray(0, n), off);
    off += n;
  }
  return out;
}

/** A netlink message as dwdump records it: the cooked header, then the whole message. */
export function encodeNetlinkRecord(
  message: Uint8Array,
  ts: Timestamp,
  snaplen: number,
  littleEndian = HOST_LITTLE_ENDIAN,
): Uint8Array {
  return encodeRecord([NETLINK_SLL, message], ts, snaplen, littleEndian);
}

// ---------- reading (tests, and checking a file we wrote) ----------

export class PcapFormatError extends Error {
  constructor(message: string) {
    super(`pcap: ${message}`);
    this.name = 'PcapFormatError';
  }
}

export interface PcapFile {
  header: Required<GlobalHeader>;
  littleEndian: boolean;
  records: PcapRecord[];
  /** Bytes after the last whole record (a capture cut mid-record); 0 for a clean file. */
  trailing: number;
}

/** Parses a classic pcap (either byte order, microsecond magic only); a partial last record is reported, not thrown. */
export function decodePcap(buf: Uint8Array): PcapFile {
  if (buf.length < PCAP_GLOBAL_HEADER_LEN) throw new PcapFormatError(`file of ${buf.length} bytes has no header`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le: boolean;
  if (v.getUint32(0, true) === PCAP_MAGIC) le = true;
  else if (v.getUint32(0, false) === PCAP_MAGIC) le = false;
  else throw new PcapFormatError(`bad magic 0x${v.getUint32(0, false).toString(16)}`);
  const header: Required<GlobalHeader> = {
    versionMajor: v.getUint16(4, le),
    versionMinor: v.getUint16(6, le),
    thiszone: v.getInt32(8, le),
    sigfigs: v.getUint32(12, le),
    snaplen: v.getUint32(16, le),
    linktype: v.getUint32(20, le),
  };
  const records: PcapRecord[] = [];
  let off = PCAP_GLOBAL_HEADER_LEN;
  while (buf.length - off >= PCAP_RECORD_HEADER_LEN) {
    const inclLen = v.getUint32(off + 8, le);
    if (buf.length - off - PCAP_RECORD_HEADER_LEN < inclLen) break;
    records.push({
      ts: { sec: v.getUint32(off, le), usec: v.getUint32(off + 4, le) },
      origLen: v.getUint32(off + 12, le),
      data: buf.subarray(off + PCAP_RECORD_HEADER_LEN, off + PCAP_RECORD_HEADER_LEN + inclLen),
    });
    off += PCAP_RECORD_HEADER_LEN + inclLen;
  }
  return { header, littleEndian: le, records, trailing: buf.length - off };
}

/** Splits a record's cooked header from the rest. */
export function decodeSll(data: Uint8Array): { sll: Required<SllHeader>; payload: Uint8Array } {
  if (data.length < SLL_HEADER_LEN) throw new PcapFormatError(`record of ${data.length} bytes has no cooked header`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const halen = v.getUint16(4, false);
  if (halen > SLL_ADDR_LEN) throw new PcapFormatError(`cooked header address length ${halen}`);
  return {
    sll: {
      pkttype: v.getUint16(0, false),
      hatype: v.getUint16(2, false),
      addr: data.slice(6, 6 + halen),
      protocol: v.getUint16(14, false),
    },
    payload: data.subarray(SLL_HEADER_LEN),
  };
}
