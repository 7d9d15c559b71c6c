// Pure parsers for tracefs description files: an event's `format`, `events/header_page`, `events/header_event`.
import { DropwatchError } from '../errors/index.js';

export interface FieldLayout {
  name: string;
  /** C type as the kernel prints it, e.g. `void *` or `unsigned short`. */
  type: string;
  offset: number;
  size: number;
  signed: boolean;
}

export interface EventFormat {
  name: string;
  id: number;
  fields: Map<string, FieldLayout>;
  printFmt: string;
  /** Every __print_symbolic table in print fmt, merged: number → name (e.g. 3 → NO_SOCKET). */
  symbols: Map<number, string>;
}

const FIELD_RE = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/;

function decodeError(what: string): DropwatchError {
  return new DropwatchError('E_DECODE', `tracefs ${what} does not parse`);
}

/** The field name is the last identifier of the declaration (`void * skbaddr`, `char data[16]`, `u64 timestamp`). */
function splitDeclaration(decl: string): { type: string; name: string } {
  const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?\s*$/.exec(decl.trim());
  if (!m) throw decodeError(`field declaration "${decl}"`);
  return { type: (m[1] ?? '').trim() + (m[3] ?? ''), name: m[2] ?? '' };
}

function parseFields(text: string): Map<string, FieldLayout> {
  const fields = new Map<string, FieldLayout>();
  for (const line of text.split('\n')) {
    const m = FIELD_RE.exec(line);
    if (!m) continue;
    const { type, name } = splitDeclaration(m[1] ?? '');
    fields.set(name, { name, type, offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' });
  }
  return fields;
}

/** Numbers → names from every `__print_symbolic(x, { n, "NAME" }, ...)` in a print fmt. */
export function parsePrintSymbolic(printFmt: string): Map<number, string> {
  const out = new Map<number, string>();
  let at = 0;
  for (;;) {
    const start = printFmt.indexOf('__print_symbolic(', at);
    if (start < 0) break;
    // Walk to the matching close paren; names are plain identifiers so quotes never hide parens that matter here.
    let depth = 0;
    let end = start + '__print_symbolic'.length;
    for (; end < printFmt.length; end++) {
      const ch = printFmt[end];
      if (ch === '(') depth++;
      else if (ch === ')' && --depth === 0) break;
    }
    const body = printFmt.slice(start, end);
    for (const m of body.matchAll(/\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"([^"]*)"\s*\}/g)) {
      out.set(Number(m[1]), m[2] ?? '');
    }
    at = end;
  }
  return out;
}

export function parseEventFormat(text: string): EventFormat {
  const name = /^name:\s*(\S+)/m.exec(text)?.[1];
  const id = /^ID:\s*(\d+)/m.exec(text)?.[1];
  const printFmt = /^print fmt:\s*(.*)$/m.exec(text)?.[1];
  if (name === undefined || id === undefined || printFmt === undefined) throw decodeError('event format');
  const fields = parseFields(text);
  if (!fields.has('common_type')) throw decodeError('event format (no common_type)');
  return { name, id: Number(id), fields, printFmt, symbols: parsePrintSymbolic(printFmt) };
}

/** Offsets of struct buffer_data_page (kernel/trace/ring_buffer.c), as `events/header_page` describes them. */
export interface PageHeaderLayout {
  timestampOffset: number;
  timestampSize: number;
  commitOffset: number;
  /** sizeof(local_t): 8 on 64-bit kernels; the missed-events count stored after the data has this size too. */
  commitSize: number;
  dataOffset: number;
  /** Bytes of data a page can hold (sub-buffer size minus the header). */
  dataSize: number;
}

export function parseHeaderPage(text: string): PageHeaderLayout {
  const f = parseFields(text);
  const ts = f.get('timestamp');
  const commit = f.get('commit');
  const data = f.get('data');
  if (!ts || !commit || !data) throw decodeError('header_page');
  return {
    timestampOffset: ts.offset,
    timestampSize: ts.size,
    commitOffset: commit.offset,
    commitSize: commit.size,
    dataOffset: data.offset,
    dataSize: data.size,
  };
}

/** The ring_buffer_event header (`events/header_event`): bit widths and the special type_len values. */
export interface EventHeaderLayout {
  typeLenBits: number;
  timeDeltaBits: number;
  padding: number;
  timeExtend: number;
  timeStamp: number;
  dataMaxTypeLen: number;
}

export function parseHeaderEvent(text: string): EventHeaderLayout {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const typeLenBits = num(/type_len\s*:\s*(\d+)\s*bits/);
  const timeDeltaBits = num(/time_delta\s*:\s*(\d+)\s*bits/);
  const padding = num(/padding\s*:\s*type\s*==\s*(\d+)/);
  const timeExtend = num(/time_extend\s*:\s*type\s*==\s*(\d+)/);
  const dataMaxTypeLen = num(/data max type_len\s*==\s*(\d+)/);
  // Older kernels do not print time_stamp; it has always been the value after time_extend (RINGBUF_TYPE_TIME_STAMP).
  const timeStamp =
    num(/time_stamp\s*:\s*type\s*==\s*(\d+)/) ?? (timeExtend === undefined ? undefined : timeExtend + 1);
  if (
    typeLenBits === undefined ||
    timeDeltaBits === undefined ||
    padding === undefined ||
    timeExtend === undefined ||
    timeStamp === undefined ||
    dataMaxTypeLen === undefined
  ) {
    throw decodeError('header_event');
  }
  if (typeLenBits + timeDeltaBits !== 32) throw decodeError('header_event (header is not 32 bits)');
  return { typeLenBits, timeDeltaBits, padding, timeExtend, timeStamp, dataMaxTypeLen };
}

/** Where the kfree_skb fields we use live, from its format. */
export interface KfreeSkbLayout {
  eventId: number;
  commonType: { offset: number; size: number };
  /** The task running when the event fired (the ftrace record header's pid). */
  commonPid: { offset: number; size: number } | null;
  location: { offset: number; size: number };
  protocol: { offset: number; size: number } | null;
  reason: { offset: number; size: number } | null;
  reasons: Map<number, string>;
  /** Bytes a record must have to hold every field we read. */
  minLength: number;
}

export function kfreeSkbLayout(format: EventFormat): KfreeSkbLayout {
  const get = (n: string): { offset: number; size: number } | null => {
    const f = format.fields.get(n);
    return f ? { offset: f.offset, size: f.size } : null;
  };
  const commonType = get('common_type');
  const location = get('location');
  if (!commonType || !location) throw new DropwatchError('E_DECODE', 'kfree_skb format has no location field');
  if (location.size !== 8 && location.size !== 4)
    throw new DropwatchError('E_DECODE', 'kfree_skb location size unsupported');
  const protocol = get('protocol');
  const reason = get('reason'); // absent before kernel 5.17
  let minLength = 0;
  for (const f of [commonType, location, protocol, reason]) if (f) minLength = Math.max(minLength, f.offset + f.size);
  const commonPid = get('common_pid');
  return { eventId: format.id, commonType, commonPid, location, protocol, reason, reasons: format.symbols, minLength };
}

/** Where the ftrace kernel_stack record (what options/stacktrace or a stacktrace trigger writes) keeps its call chain. */
export interface KernelStackLayout {
  eventId: number;
  /** Number of entries in `caller` (a count, not bytes: the record is 16 + 8 × size bytes long on 64-bit). */
  size: { offset: number; size: number };
  /** The first return address; the array is as long as `size` says, whatever its declared length. */
  callerOffset: number;
  /** Bytes per address. */
  callerSize: number;
}

export function kernelStackLayout(format: EventFormat): KernelStackLayout {
  const size = format.fields.get('size');
  const caller = format.fields.get('caller');
  if (!size || !caller || size.size !== 4)
    throw new DropwatchError('E_DECODE', 'kernel_stack format has no size field');
  // `unsigned long caller[8]`: the declared array tells the element size.
  const declared = /\[(\d+)\]$/.exec(caller.type);
  const callerSize = declared ? caller.size / Number(declared[1]) : caller.size;
  if (callerSize !== 8 && callerSize !== 4)
    throw new DropwatchError('E_DECODE', 'kernel_stack caller size unsupported');
  return {
    eventId: format.id,
    size: { offset: size.offset, size: size.size },
    callerOffset: caller.offset,
    callerSize,
  };
}

/** The call chain in a kernel_stack record's data, or null when the record is not one (too short for its size). */
export function readKernelStack(
  view: DataView,
  dataOffset: number,
  dataLength: number,
  layout: KernelStackLayout,
  littleEndian = true,
): bigint[] | null {
  if (dataLength < layout.callerOffset) return null;
  const entries = view.getInt32(dataOffset + layout.size.offset, littleEndian);
  if (entries < 0 || layout.callerOffset + entries * layout.callerSize > dataLength) return null;
  const frames: bigint[] = new Array<bigint>(entries);
  for (let i = 0; i < entries; i++) {
    const at = dataOffset + layout.callerOffset + i * layout.callerSize;
    frames[i] =
      layout.callerSize === 8 ? view.getBigUint64(at, littleEndian) : BigInt(view.getUint32(at, littleEndian));
  }
  return frames;
}

/**
 * The callers behind a drop at `pc`: the frames after the one at `pc` itself. The frames before it are the tracing
 * machinery and the freeing function (kfree_skb), which say nothing about why. Without `pc` among them, all frames.
 */
export function callersOf(frames: readonly bigint[], pc: bigint): readonly bigint[] {
  const at = frames.indexOf(pc);
  return at < 0 ? frames : frames.slice(at + 1);
}

/** Counters from per_cpu/cpuN/stats. */
export interface CpuStats {
  entries: number;
  /** Events overwritten before being read (overwrite mode). */
  overrun: number;
  /** Events lost because a nested write wrapped onto the page being committed. */
  commitOverrun: number;
  /** Events refused because the buffer was full (non-overwrite mode). */
  droppedEvents: number;
  readEvents: number;
}

export function parseCpuStats(text: string): CpuStats {
  const get = (key: string): number => {
    const m = new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  if (!/^overrun:/m.test(text)) throw decodeError('per-CPU stats');
  return {
    entries: get('entries'),
    overrun: get('overrun'),
    commitOverrun: get('commit overrun'),
    droppedEvents: get('dropped events'),
    readEvents: get('read events'),
  };
}

/** Every event the kernel lost on this CPU's buffer: overwritten, wrapped, or refused. */
export function lostFromStats(s: CpuStats): number {
  return s.overrun + s.commitOverrun + s.droppedEvents;
}

/**
 * The last entry of an instance's error_log as one line, e.g. `Field not found at column 1`, or null when empty.
 * An entry is `[ts] event filter parse error: error: MESSAGE`, `  Command: TEXT`, then a caret line under TEXT.
 */
export function parseLastErrorLog(
  text: string,
): { message: string; command: string | null; column: number | null } | null {
  const lines = text.split('\n');
  let head = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^\[\s*[\d.]+\]/.test(lines[i] ?? '')) {
      head = i;
      break;
    }
  }
  if (head < 0) return null;
  const message = (lines[head] ?? '')
    .replace(/^\[\s*[\d.]+\]\s*/, '')
    .replace(/^.*?error:\s*(?:error:\s*)?/, '')
    .trim();
  const cmdLine = lines[head + 1] ?? '';
  const cm = /^(\s*Command:\s*)(.*)$/.exec(cmdLine);
  if (!cm) return { message, command: null, column: null };
  const caret = (lines[head + 2] ?? '').indexOf('^');
  const column = caret >= 0 ? caret - (cm[1] ?? '').length + 1 : null;
  return { message, command: cm[2] ?? '', column: column !== null && column >= 1 ? column : null };
}
