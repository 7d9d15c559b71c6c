// Hardware drops on the bpf source (pure): trap count records and trapped packet records (struct dw_trap_* in
// bpf/dropwatch.h), the growth of the kernel's cumulative counts, and the summary entries and packets NET_DM gives.
import type { DropPlace, PacketDrop, SummaryEntry } from '../backend/types.js';
import { decodeFlow } from '../packet/index.js';

/** Hardware drops at one trap, of one group, on one input port, counted since the program loaded. */
export interface TrapCountRecord {
  trap: string;
  group: string;
  /** 0: the driver named no input port. */
  ifindex: number;
  /** The input port's network namespace inode; 0 without a port. */
  netns: number;
  count: bigint;
  ifname: string;
}

/** The drops a trap count grew by: a TrapCountRecord whose count is a number of new drops. */
export interface TrapDrops extends Omit<TrapCountRecord, 'count'> {
  count: number;
}

/** One trapped packet as the program copied it. */
export interface TrapPacketRecord {
  /** CLOCK_MONOTONIC, ns. */
  monoNs: bigint;
  ifindex: number;
  netns: number;
  origLen: number;
  protocol: number;
  trap: string;
  group: string;
  ifname: string;
  /** From skb->data: the MAC header, where drivers report trapped packets from. */
  data: Uint8Array;
}

export const TRAP_COUNT_BYTES = 160;
export const TRAP_PACKET_BYTES = 432;
/** The fixed part of struct dw_trap_packet, before its data. */
const TRAP_PACKET_HEADER = 176;
const NAME = 64;
const IFNAME = 16;

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A NUL-padded C string. */
function cString(b: Uint8Array, offset: number, size: number): string {
  const end = b.subarray(offset, offset + size).indexOf(0);
  return Buffer.from(b.subarray(offset, end < 0 ? offset + size : offset + end)).toString('latin1');
}

function records(bytes: Uint8Array, size: number, what: string): DataView {
  if (bytes.length % size !== 0) throw new RangeError(`${what} come in ${size} bytes, got ${bytes.length}`);
  return view(bytes);
}

export function decodeTrapCounts(bytes: Uint8Array): TrapCountRecord[] {
  const v = records(bytes, TRAP_COUNT_BYTES, 'trap count records');
  const out: TrapCountRecord[] = [];
  for (let o = 0; o < bytes.length; o += TRAP_COUNT_BYTES)
    out.push({
      trap: cString(bytes, o, NAME),
      group: cString(bytes, o + NAME, NAME),
      ifindex: v.getUint32(o + 128, true),
      netns: v.getUint32(o + 132, true),
      count: v.getBigUint64(o + 136, true),
      ifname: cString(bytes, o + 144, IFNAME),
    });
  return out;
}

export function decodeTrapPackets(bytes: Uint8Array): TrapPacketRecord[] {
  const v = records(bytes, TRAP_PACKET_BYTES, 'trapped packet records');
  const out: TrapPacketRecord[] = [];
  for (let o = 0; o < bytes.length; o += TRAP_PACKET_BYTES) {
    const capLen = Math.min(v.getUint32(o + 20, true), TRAP_PACKET_BYTES - TRAP_PACKET_HEADER);
    out.push({
      monoNs: v.getBigUint64(o, true),
      ifindex: v.getUint32(o + 8, true),
      netns: v.getUint32(o + 12, true),
      origLen: v.getUint32(o + 16, true),
      protocol: v.getUint16(o + 24, true),
      trap: cString(bytes, o + 32, NAME),
      group: cString(bytes, o + 96, NAME),
      ifname: cString(bytes, o + 160, IFNAME),
      data: bytes.slice(o + TRAP_PACKET_HEADER, o + TRAP_PACKET_HEADER + capLen),
    });
  }
  return out;
}

const keyOf = (r: TrapCountRecord): string => `${r.trap}\0${r.group}\0${r.ifindex}\0${r.netns}`;

/**
 * The kernel's trap counts only grow (nothing is deleted while the program may write): each read reports what every
 * count grew by since the one before, and the baseline leaves out what was counted before monitoring started.
 */
export class TrapTally {
  private readonly seen = new Map<string, bigint>();

  baseline(now: readonly TrapCountRecord[]): void {
    this.seen.clear();
    for (const r of now) this.seen.set(keyOf(r), r.count);
  }

  grown(now: readonly TrapCountRecord[]): TrapDrops[] {
    const out: TrapDrops[] = [];
    for (const r of now) {
      const key = keyOf(r);
      const before = this.seen.get(key) ?? 0n;
      if (r.count <= before) continue;
      this.seen.set(key, r.count);
      out.push({ ...r, count: Number(r.count - before) });
    }
    return out;
  }
}

/** NET_DM's hardware summary entries, one per trap name, with the input ports as places, in first-seen order. */
export function trapEntries(drops: readonly TrapDrops[]): SummaryEntry[] {
  const lines = new Map<string, SummaryEntry & { places: DropPlace[] }>();
  for (const d of drops) {
    let line = lines.get(d.trap);
    if (!line) {
      line = { origin: 'hardware', pc: 0n, trap: d.trap, reason: null, count: 0, places: [] };
      lines.set(d.trap, line);
    }
    line.count += d.count;
    const place: DropPlace = {
      netns: d.netns === 0 ? null : d.netns,
      ifindex: d.ifindex === 0 ? null : d.ifindex,
      ifname: d.ifindex === 0 || d.ifname === '' ? null : d.ifname,
      count: d.count,
    };
    // A trap in two groups (two drivers' names alike) is one line, as NET_DM counts by name.
    const same = line.places.find(
      (p) => p.netns === place.netns && p.ifindex === place.ifindex && p.ifname === place.ifname,
    );
    if (same) same.count += place.count;
    else line.places.push(place);
  }
  return [...lines.values()];
}

/** A trapped packet as NET_DM reports one: trap and group, input port, time, protocol, lengths, payload and flow. */
export function trapPacket(r: TrapPacketRecord, wallOffsetNs: bigint): PacketDrop {
  const packet: PacketDrop = {
    origin: 'hardware',
    trapName: r.trap,
    trapGroup: r.group,
    timestampNs: r.monoNs + wallOffsetNs,
    protocol: r.protocol,
    origLen: r.origLen,
  };
  if (r.ifindex !== 0) packet.inPort = { ifindex: r.ifindex, ...(r.ifname === '' ? {} : { name: r.ifname }) };
  packet.netns = r.netns === 0 ? null : r.netns;
  if (r.data.length > 0) {
    packet.payload = r.data;
    packet.flow = decodeFlow(r.data, r.protocol);
  }
  return packet;
}
