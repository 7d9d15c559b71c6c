// Decoders for what the BPF addon hands over (pure): drained counts (80-byte records) and packet records
// (struct dw_packet in bpf/dropwatch.h), and the reason table read from the kernel's BTF.
import type { DropPlace, SummaryEntry } from '../backend/types.js';
import { SUBSYS_SHIFT } from './btf.js';

/**
 * One drained count: drops at one location, for one reason, in one namespace, on one device, of one protocol, and in
 * one task's context (or in none).
 */
export interface CountRecord {
  location: bigint;
  reason: number;
  /** 0: the drop had neither a device nor a socket. */
  netns: number;
  /** 0: no device. */
  ifindex: number;
  protocol: number;
  /** The task's tgid when the drops happened in its context; 0 in softirq, hard irq or NMI. */
  pid: number;
  /** That task's cgroup v2 id (its directory's inode in the unified hierarchy); 0 with pid 0. */
  cgroup: number;
  count: number;
  ifname: string;
  /** The task's name (of the first thread seen), '' with pid 0. */
  comm: string;
}

/** One dropped packet as the program copied it. */
export interface PacketRecord {
  /** CLOCK_MONOTONIC, ns. */
  monoNs: bigint;
  location: bigint;
  reason: number;
  netns: number;
  ifindex: number;
  origLen: number;
  /** The task's tgid when the drop happened in its context, else 0. */
  pid: number;
  /** That task's cgroup v2 id, else 0. */
  cgroup: number;
  protocol: number;
  /** The bytes start at the MAC header (else at the network header). */
  fromMac: boolean;
  comm: string;
  ifname: string;
  data: Uint8Array;
}

/** native/bpf.cc's DrainedCount: struct dw_count_key (40 bytes), the count, the device's and the task's names. */
export const COUNT_RECORD_BYTES = 80;
/** The fixed part of struct dw_packet, before its data. */
export const PACKET_HEADER_BYTES = 88;

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
/** The same bytes as a Buffer, without a copy, for its native string decoding. */
const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A NUL-padded C string, read in place: this runs twice for every packet of a flood. */
function cString(b: Buffer, offset: number, size: number): string {
  const limit = offset + size;
  let end = offset;
  while (end < limit && b[end] !== 0) end++;
  return end === offset ? '' : b.toString('latin1', offset, end);
}

export function decodeCounts(data: Uint8Array): CountRecord[] {
  if (data.length % COUNT_RECORD_BYTES !== 0)
    throw new RangeError(`count records come in ${COUNT_RECORD_BYTES} bytes, got ${data.length}`);
  const bytes = asBuffer(data);
  const v = view(bytes);
  const out: CountRecord[] = [];
  for (let o = 0; o < bytes.length; o += COUNT_RECORD_BYTES) {
    out.push({
      location: v.getBigUint64(o, true),
      reason: v.getUint32(o + 8, true),
      netns: v.getUint32(o + 12, true),
      ifindex: v.getUint32(o + 16, true),
      protocol: v.getUint16(o + 20, true),
      pid: v.getUint32(o + 24, true),
      cgroup: Number(v.getBigUint64(o + 32, true)),
      count: Number(v.getBigUint64(o + 40, true)),
      ifname: cString(bytes, o + 48, 16),
      comm: cString(bytes, o + 64, 16),
    });
  }
  return out;
}

/**
 * `recordBytes`: the size of one record (the addon's packetRecordBytes); each carries at most that less the header.
 * Each record's data is a view into `data`, not a copy.
 */
export function decodePackets(data: Uint8Array, recordBytes: number): PacketRecord[] {
  if (data.length % recordBytes !== 0)
    throw new RangeError(`packet records come in ${recordBytes} bytes, got ${data.length}`);
  const bytes = asBuffer(data);
  const v = view(bytes);
  const out: PacketRecord[] = [];
  for (let o = 0; o < bytes.length; o += recordBytes) {
    const capLen = Math.min(v.getUint32(o + 32, true), recordBytes - PACKET_HEADER_BYTES);
    out.push({
      monoNs: v.getBigUint64(o, true),
      location: v.getBigUint64(o + 8, true),
      reason: v.getUint32(o + 16, true),
      netns: v.getUint32(o + 20, true),
      ifindex: v.getUint32(o + 24, true),
      origLen: v.getUint32(o + 28, true),
      pid: v.getUint32(o + 36, true),
      cgroup: Number(v.getBigUint64(o + 80, true)),
      protocol: v.getUint16(o + 40, true),
      fromMac: bytes[o + 42] !== 0,
      comm: cString(bytes, o + 48, 16),
      ifname: cString(bytes, o + 64, 16),
      data: bytes.subarray(o + PACKET_HEADER_BYTES, o + PACKET_HEADER_BYTES + capLen),
    });
  }
  return out;
}

/**
 * BTF's enum skb_drop_reason as tracefs names it: SKB_DROP_REASON_ dropped (NO_SOCKET), other SKB_ names without
 * SKB_ (CONSUMED), the negative subsystem mask left out.
 */
export function reasonTable(members: readonly (readonly [number, string])[]): Map<number, string> {
  const table = new Map<number, string>();
  for (const [value, name] of members) {
    if (value < 0) continue;
    table.set(value, name.replace(/^SKB_DROP_REASON_/, '').replace(/^SKB_/, ''));
  }
  return table;
}

/**
 * Reason numbers as names. A number the table lacks shows as UNKNOWN(n), or UNKNOWN(subsystem:reason) in a subsystem's
 * range whose BTF did not name it (a module loaded later, or without BTF): no letters beside UNKNOWN, so a filter's
 * letters-only pattern decides every unnamed reason alike (src/filter/sets.ts).
 */
export function reasonName(reasons: ReadonlyMap<number, string>, reason: number): string {
  const name = reasons.get(reason);
  if (name !== undefined) return name;
  const subsystem = Math.floor(reason / 2 ** SUBSYS_SHIFT);
  return subsystem > 0 ? `UNKNOWN(${subsystem}:${reason % 2 ** SUBSYS_SHIFT})` : `UNKNOWN(${reason})`;
}

/**
 * Counts as summary entries: one per (location, reason), its places per namespace, device and task (pid, comm and
 * cgroup, null for drops in no task's context), in first-seen order.
 */
export function summaryEntries(records: readonly CountRecord[], reasons: ReadonlyMap<number, string>): SummaryEntry[] {
  const lines = new Map<string, SummaryEntry & { places: DropPlace[] }>();
  for (const r of records) {
    const key = `${r.location.toString(16)}/${r.reason}`;
    let line = lines.get(key);
    if (!line) {
      line = { origin: 'software', pc: r.location, reason: reasonName(reasons, r.reason), count: 0, places: [] };
      lines.set(key, line);
    }
    line.count += r.count;
    const place: DropPlace = {
      netns: r.netns === 0 ? null : r.netns,
      ifindex: r.ifindex === 0 ? null : r.ifindex,
      ifname: r.ifindex === 0 || r.ifname === '' ? null : r.ifname,
      pid: r.pid === 0 ? null : r.pid,
      comm: r.pid === 0 ? null : r.comm,
      cgroup: r.pid === 0 || r.cgroup === 0 ? null : r.cgroup,
      count: r.count,
    };
    // Protocols are counted apart in the kernel but not shown apart: merge them.
    const same = line.places.find(
      (p) =>
        p.netns === place.netns &&
        p.ifindex === place.ifindex &&
        p.ifname === place.ifname &&
        p.pid === place.pid &&
        p.comm === place.comm &&
        p.cgroup === place.cgroup,
    );
    if (same) same.count += place.count;
    else line.places.push(place);
  }
  return [...lines.values()];
}
