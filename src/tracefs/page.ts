// Pure decoder for one ring-buffer page as read from per_cpu/cpuN/trace_pipe_raw (struct buffer_data_page in
// kernel/trace/ring_buffer.c): a page header, then ring_buffer_event records, then (maybe) the missed-events count.
import { DropwatchError } from '../errors/index.js';
import type { EventHeaderLayout, KfreeSkbLayout, PageHeaderLayout } from './format.js';

/** commit flag: events were lost between the previous page read and this one (ring_buffer.c RB_MISSED_EVENTS). */
export const RB_MISSED_EVENTS = 0x80000000;
/** commit flag: the number lost is stored right after the data, as a long (RB_MISSED_STORED). */
export const RB_MISSED_STORED = 0x40000000;
const COMMIT_MASK = 0x3fffffff;
/** Absolute time-stamp events keep 59 bits; the top 5 come from the previous time (ring_buffer.c TS_MSB). */
const TS_MSB = 0xf8n << 56n;
const TS_59 = 1n << 59n;
const TWO27 = 2 ** 27;
/** Fold the relative time into the bigint base before it could lose precision as a double. */
const REL_FOLD = 2 ** 52;

export interface PageInfo {
  /** Ring-buffer clock time of the page start. */
  timestamp: bigint;
  /** Bytes of event data on the page. */
  dataLength: number;
  missedEvents: boolean;
  /** How many events were lost before this page, when the kernel had room to store it; null when only flagged. */
  missedCount: number | null;
  /** Data records (excluding padding and time events). */
  records: number;
}

/**
 * Called for each data record: its payload is bytes[dataOffset, dataOffset + dataLength). Its time is
 * tsBase + tsRel (ns of the instance's trace clock); tsRel stays a double so the hot path makes no bigint.
 */
export type RecordVisitor = (dataOffset: number, dataLength: number, tsBase: bigint, tsRel: number) => void;

export interface PageLayouts {
  page: PageHeaderLayout;
  event: EventHeaderLayout;
  littleEndian?: boolean;
}

function bad(msg: string): DropwatchError {
  return new DropwatchError('E_DECODE', `tracefs page: ${msg}`);
}

function readUnsigned(view: DataView, off: number, size: number, le: boolean): bigint {
  if (size === 8) return view.getBigUint64(off, le);
  if (size === 4) return BigInt(view.getUint32(off, le));
  throw bad(`unsupported field size ${size}`);
}

/** Walks one page; returns its header facts. Throws E_DECODE on a record that runs off the page. */
export function decodePage(bytes: Uint8Array, layouts: PageLayouts, visit?: RecordVisitor): PageInfo {
  const le = layouts.littleEndian ?? true;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const info = readPageHeader(view, layouts.page, le);
  info.records = walkRecords(view, layouts, info, visit);
  return info;
}

/** The page header, with `records` still 0. */
function readPageHeader(view: DataView, page: PageHeaderLayout, le: boolean): PageInfo {
  const size = view.byteLength;
  if (size < page.dataOffset) throw bad(`short read (${size} bytes)`);
  const timestamp = readUnsigned(view, page.timestampOffset, page.timestampSize, le);
  // The flags sit in bits 31/30 of the (long) commit; on a big-endian 8-byte local_t those are the last 4 bytes.
  const commitLow =
    page.commitSize === 8 && !le ? view.getUint32(page.commitOffset + 4, le) : view.getUint32(page.commitOffset, le);
  const dataLength = commitLow & COMMIT_MASK;
  const missedEvents = (commitLow & RB_MISSED_EVENTS) !== 0;
  const end = page.dataOffset + dataLength;
  if (end > size) throw bad(`commit ${dataLength} beyond ${size}-byte page`);
  let missedCount: number | null = null;
  if (missedEvents && (commitLow & RB_MISSED_STORED) !== 0) {
    if (end + page.commitSize > size) throw bad('missed-events count beyond page');
    missedCount = Number(readUnsigned(view, end, page.commitSize, le));
  }
  return { timestamp, dataLength, missedEvents, missedCount, records: 0 };
}

/** Visits the data records after the header; returns how many there were. */
function walkRecords(view: DataView, layouts: PageLayouts, info: PageInfo, visit?: RecordVisitor): number {
  const { page, event } = layouts;
  const le = layouts.littleEndian ?? true;
  const { dataLength } = info;
  const end = page.dataOffset + dataLength;
  const typeBits = event.typeLenBits;
  const typeMask = (1 << typeBits) - 1;
  let tsBase = info.timestamp;
  let tsRel = 0;
  let records = 0;
  let off = page.dataOffset;
  while (off < end) {
    if (off + 4 > end) throw bad(`event header at ${off} beyond commit`);
    const hdr = view.getUint32(off, le);
    // C bit-fields fill from the least significant bit on little-endian, from the most significant on big-endian.
    const typeLen = le ? hdr & typeMask : hdr >>> (32 - typeBits);
    const delta = le ? hdr >>> typeBits : hdr & ((1 << (32 - typeBits)) - 1);
    let total: number;
    if (typeLen === event.padding) {
      if (delta === 0) break; // null event: the rest of the page is unused
      if (off + 8 > end) throw bad(`padding at ${off} beyond commit`);
      total = view.getUint32(off + 4, le) + 4;
      // A discarded event keeps its delta; 1 only marks it as not-null (ring_buffer.c rb_event_discard).
      if (delta !== 1) tsRel += delta;
    } else if (typeLen === event.timeExtend || typeLen === event.timeStamp) {
      if (off + 8 > end) throw bad(`time event at ${off} beyond commit`);
      const hi = view.getUint32(off + 4, le);
      total = 8;
      if (typeLen === event.timeExtend) {
        const ext = hi * TWO27 + delta;
        if (Number.isSafeInteger(ext) && tsRel + ext < REL_FOLD) tsRel += ext;
        else {
          tsBase += BigInt(tsRel) + (BigInt(hi) << 27n) + BigInt(delta);
          tsRel = 0;
        }
      } else {
        tsBase = absoluteTime(hi, delta, tsBase + BigInt(tsRel));
        tsRel = 0;
      }
    } else if (typeLen <= event.dataMaxTypeLen) {
      let dataOffset: number;
      let len: number;
      if (typeLen === 0) {
        if (off + 8 > end) throw bad(`long event at ${off} beyond commit`);
        const a0 = view.getUint32(off + 4, le); // payload length plus this 4-byte length word
        if (a0 < 4) throw bad(`long event at ${off} with length ${a0}`);
        dataOffset = off + 8;
        len = a0 - 4;
        total = a0 + 4;
      } else {
        dataOffset = off + 4;
        len = typeLen * 4;
        total = len + 4;
      }
      tsRel += delta;
      if (tsRel >= REL_FOLD) {
        tsBase += BigInt(tsRel);
        tsRel = 0;
      }
      if (off + total > end) throw bad(`event at ${off} (${total} bytes) beyond commit ${dataLength}`);
      records++;
      if (visit) visit(dataOffset, len, tsBase, tsRel);
    } else {
      throw bad(`unknown type_len ${typeLen} at ${off}`);
    }
    if (total <= 0) throw bad(`zero-length event at ${off}`);
    off += total;
  }
  return records;
}

/** An absolute time-stamp event's time: 59 bits from the event, the top 5 from the time before it. */
function absoluteTime(hi: number, delta: number, prev: bigint): bigint {
  let abs = (BigInt(hi) << 27n) + BigInt(delta);
  if ((prev & TS_MSB) !== 0n) {
    abs |= prev & TS_MSB;
    if (abs < prev) abs += TS_59;
  }
  return abs;
}

/** One kfree_skb record. */
export interface KfreeSkbRecord {
  /** Ring-buffer clock (ns) of the drop. */
  timestamp: bigint;
  location: bigint;
  reason: number | null;
  reasonName: string | null;
  protocol: number | null;
}

function readSmall(view: DataView, off: number, size: number, le: boolean): number {
  switch (size) {
    case 1:
      return view.getUint8(off);
    case 2:
      return view.getUint16(off, le);
    case 4:
      return view.getUint32(off, le);
    default:
      throw bad(`unsupported field size ${size}`);
  }
}

/** The reason's name from the kernel's table; `UNKNOWN(n)` for numbers the table lacks (e.g. subsystem reasons). */
export function reasonName(layout: KfreeSkbLayout, reason: number | null): string | null {
  if (reason === null) return null;
  return layout.reasons.get(reason) ?? `UNKNOWN(${reason})`;
}

/** Decodes every kfree_skb record of a page (records of other events, by common_type, are skipped). */
export function decodeKfreeSkbPage(
  bytes: Uint8Array,
  layouts: PageLayouts,
  skb: KfreeSkbLayout,
): { info: PageInfo; drops: KfreeSkbRecord[] } {
  const le = layouts.littleEndian ?? true;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const drops: KfreeSkbRecord[] = [];
  const info = decodePage(bytes, layouts, (off, len, tsBase, tsRel) => {
    if (len < skb.minLength) return;
    if (readSmall(view, off + skb.commonType.offset, skb.commonType.size, le) !== skb.eventId) return;
    const reason = skb.reason ? readSmall(view, off + skb.reason.offset, skb.reason.size, le) : null;
    drops.push({
      timestamp: tsBase + BigInt(tsRel),
      location: readUnsigned(view, off + skb.location.offset, skb.location.size, le),
      reason,
      reasonName: reasonName(skb, reason),
      protocol: skb.protocol ? readSmall(view, off + skb.protocol.offset, skb.protocol.size, le) : null,
    });
  });
  return { info, drops };
}
