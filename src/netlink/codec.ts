// Pure netlink codec: nlmsghdr, NLMSG_ERROR/DONE with extended ACK, genlmsghdr and attributes, in host byte order.
// Decoders return values or throw DropwatchError('E_DECODE'); every loop advances by at least 4 bytes, so none hangs.

import { endianness } from 'node:os';
import { DropwatchError } from '../errors/index.js';

const LE = endianness() === 'LE';

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const GENL_HDRLEN = 4;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
/** First message type free for families (generic netlink ids start here). */
export const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
/** In NLMSG_ERROR: the original request is cut to its header (NETLINK_CAP_ACK). */
export const NLM_F_CAPPED = 0x100;
/** In NLMSG_ERROR/DONE: extended-ACK TLVs follow (NETLINK_EXT_ACK). */
export const NLM_F_ACK_TLVS = 0x200;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_POLICY = 4;
export const NLMSGERR_ATTR_MISS_TYPE = 5;
export const NLMSGERR_ATTR_MISS_NEST = 6;

export const align4 = (n: number): number => (n + 3) & ~3;

function decodeError(message: string): DropwatchError {
  return new DropwatchError('E_DECODE', `netlink: ${message}`);
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

// ---------- nlmsghdr ----------

export interface NlMsgHeader {
  len: number;
  type: number;
  flags: number;
  seq: number;
  /** Sender's port id (0 for the kernel); in replies, the requester's. */
  pid: number;
}

export interface NlMessage {
  header: NlMsgHeader;
  /** The bytes after the 16-byte header, up to header.len. */
  payload: Uint8Array;
  /** The whole message, header included, exactly header.len bytes (what dwdump's pcap records). */
  raw: Uint8Array;
}

export function decodeNlMsgHeader(buf: Uint8Array, offset = 0): NlMsgHeader {
  return headerAt(buf, view(buf), offset);
}

function headerAt(buf: Uint8Array, v: DataView, offset: number): NlMsgHeader {
  if (offset < 0 || buf.length - offset < NLMSG_HDRLEN) throw decodeError('short nlmsghdr');
  return {
    len: v.getUint32(offset, LE),
    type: v.getUint16(offset + 4, LE),
    flags: v.getUint16(offset + 6, LE),
    seq: v.getUint32(offset + 8, LE),
    pid: v.getUint32(offset + 12, LE),
  };
}

/** Splits one datagram into its messages (several per datagram in dumps and batched alerts). */
export function decodeNlMsgs(datagram: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  const v = view(datagram);
  let offset = 0;
  while (offset < datagram.length) {
    const header = headerAt(datagram, v, offset);
    if (header.len < NLMSG_HDRLEN) throw decodeError(`nlmsg_len ${header.len} shorter than its header`);
    if (header.len > datagram.length - offset) throw decodeError(`nlmsg_len ${header.len} runs past the datagram`);
    out.push({
      header,
      payload: datagram.subarray(offset + NLMSG_HDRLEN, offset + header.len),
      raw: datagram.subarray(offset, offset + header.len),
    });
    offset += align4(header.len);
  }
  return out;
}

export interface NlMsgSpec {
  type: number;
  flags?: number;
  seq?: number;
  pid?: number;
}

/** One message: header plus payload parts, each part padded to 4 bytes as the kernel expects. */
export function encodeNlMsg(spec: NlMsgSpec, payload: Uint8Array | readonly Uint8Array[] = []): Uint8Array {
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  let len = NLMSG_HDRLEN;
  for (const p of parts) len = align4(len) + p.length;
  const out = new Uint8Array(align4(len));
  const v = view(out);
  v.setUint32(0, len, LE);
  v.setUint16(4, spec.type, LE);
  v.setUint16(6, spec.flags ?? 0, LE);
  v.setUint32(8, spec.seq ?? 0, LE);
  v.setUint32(12, spec.pid ?? 0, LE);
  let off = NLMSG_HDRLEN;
  for (const p of parts) {
    off = align4(off);
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// ---------- attributes ----------

export interface NlAttr {
  /** Type with NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off. */
  type: number;
  nested: boolean;
  netByteOrder: boolean;
  data: Uint8Array;
}

export function decodeAttrs(buf: Uint8Array): NlAttr[] {
  const out: NlAttr[] = [];
  const v = view(buf);
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < NLA_HDRLEN) throw decodeError('short attribute header');
    const len = v.getUint16(offset, LE);
    const rawType = v.getUint16(offset + 2, LE);
    if (len < NLA_HDRLEN) throw decodeError(`nla_len ${len} shorter than its header`);
    if (len > buf.length - offset) throw decodeError(`nla_len ${len} runs past its container`);
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      data: buf.subarray(offset + NLA_HDRLEN, offset + len),
    });
    offset += align4(len);
  }
  return out;
}

/** Attributes by type; a repeated type keeps the last one, as the kernel's nla_parse does. */
export function attrMap(buf: Uint8Array): Map<number, NlAttr> {
  const m = new Map<number, NlAttr>();
  for (const a of decodeAttrs(buf)) m.set(a.type, a);
  return m;
}

function need(a: NlAttr, size: number, what: string): DataView {
  if (a.data.length < size) throw decodeError(`attribute ${a.type}: ${a.data.length} bytes, ${what} needs ${size}`);
  return view(a.data);
}

export const attrU8 = (a: NlAttr): number => need(a, 1, 'u8').getUint8(0);
export const attrU16 = (a: NlAttr): number => need(a, 2, 'u16').getUint16(0, LE && !a.netByteOrder);
export const attrU32 = (a: NlAttr): number => need(a, 4, 'u32').getUint32(0, LE && !a.netByteOrder);
export const attrS32 = (a: NlAttr): number => need(a, 4, 's32').getInt32(0, LE && !a.netByteOrder);
export const attrU64 = (a: NlAttr): bigint => need(a, 8, 'u64').getBigUint64(0, LE && !a.netByteOrder);
export const attrBinary = (a: NlAttr): Uint8Array => a.data;
export const attrNested = (a: NlAttr): NlAttr[] => decodeAttrs(a.data);
/** A flag attribute is true by being present. */
export const attrFlagPresent = (m: ReadonlyMap<number, NlAttr>, type: number): boolean => m.has(type);

// decode() without { stream: true } keeps no state between calls, so one decoder serves every call.
const UTF8 = new TextDecoder('utf-8', { fatal: false });

/** A NUL-terminated string; text after the first NUL is ignored, a missing NUL is tolerated. */
export function attrString(a: NlAttr): string {
  const nul = a.data.indexOf(0);
  return UTF8.decode(nul < 0 ? a.data : a.data.subarray(0, nul));
}

const EMPTY = new Uint8Array(0);

/**
 * One attribute stream indexed by type without an object per attribute, for decoders that run once per packet: where
 * each type up to maxType was last seen (nla_parse keeps the last), with the same framing checks and errors as
 * decodeAttrs and the attr* readers. Types above maxType are checked and skipped. Reused across messages: scan()
 * forgets the previous one.
 */
export class AttrIndex {
  private readonly start: Int32Array;
  private readonly len: Int32Array;
  private readonly netOrder: Uint8Array;
  private buf: Uint8Array = EMPTY;
  private v: DataView = view(EMPTY);
  // The last text decoded per type and its bytes: alerts repeat the same symbol and reason, so most decodes are skipped.
  private readonly memoBytes: (Uint8Array | undefined)[];
  private readonly memoText: string[];

  constructor(readonly maxType: number) {
    this.start = new Int32Array(maxType + 1).fill(-1);
    this.len = new Int32Array(maxType + 1);
    this.netOrder = new Uint8Array(maxType + 1);
    this.memoBytes = new Array<Uint8Array | undefined>(maxType + 1).fill(undefined);
    this.memoText = new Array<string>(maxType + 1).fill('');
  }

  /** Indexes the attributes of buf from offset on; throws E_DECODE for a malformed stream. */
  scan(buf: Uint8Array, offset = 0): this {
    const v = view(buf);
    const end = buf.length;
    this.start.fill(-1);
    this.buf = buf;
    this.v = v;
    while (offset < end) {
      if (end - offset < NLA_HDRLEN) throw decodeError('short attribute header');
      const len = v.getUint16(offset, LE);
      const rawType = v.getUint16(offset + 2, LE);
      if (len < NLA_HDRLEN) throw decodeError(`nla_len ${len} shorter than its header`);
      if (len > end - offset) throw decodeError(`nla_len ${len} runs past its container`);
      const type = rawType & NLA_TYPE_MASK;
      if (type <= this.maxType) {
        this.start[type] = offset + NLA_HDRLEN;
        this.len[type] = len - NLA_HDRLEN;
        this.netOrder[type] = rawType & NLA_F_NET_BYTEORDER ? 1 : 0;
      }
      offset += align4(len);
    }
    return this;
  }

  has(type: number): boolean {
    return this.start[type]! >= 0;
  }

  private at(type: number, size: number, what: string): number {
    const start = this.start[type]!;
    if (start < 0) throw decodeError(`attribute ${type} is absent`);
    const len = this.len[type]!;
    if (len < size) throw decodeError(`attribute ${type}: ${len} bytes, ${what} needs ${size}`);
    return start;
  }

  u8(type: number): number {
    return this.buf[this.at(type, 1, 'u8')]!;
  }
  u16(type: number): number {
    return this.v.getUint16(this.at(type, 2, 'u16'), LE && this.netOrder[type] === 0);
  }
  u32(type: number): number {
    return this.v.getUint32(this.at(type, 4, 'u32'), LE && this.netOrder[type] === 0);
  }
  u64(type: number): bigint {
    return this.v.getBigUint64(this.at(type, 8, 'u64'), LE && this.netOrder[type] === 0);
  }

  /** The value's bytes, a view into the scanned buffer. */
  bytes(type: number): Uint8Array {
    const start = this.at(type, 0, 'a value');
    return this.buf.subarray(start, start + this.len[type]!);
  }

  /** As attrString. */
  string(type: number): string {
    const start = this.at(type, 0, 'a string');
    let end = start;
    const limit = start + this.len[type]!;
    const buf = this.buf;
    while (end < limit && buf[end] !== 0) end++;
    const memo = this.memoBytes[type];
    if (memo !== undefined && memo.length === end - start) {
      let i = 0;
      while (i < memo.length && memo[i] === buf[start + i]) i++;
      if (i === memo.length) return this.memoText[type]!;
    }
    const bytes = buf.slice(start, end);
    const text = UTF8.decode(bytes);
    this.memoBytes[type] = bytes;
    this.memoText[type] = text;
    return text;
  }
}

function nla(type: number, data: Uint8Array): Uint8Array {
  const len = NLA_HDRLEN + data.length;
  if (len > 0xffff) throw new DropwatchError('E_BAD_INPUT', `netlink attribute ${type} too long (${len} bytes)`);
  const out = new Uint8Array(align4(len));
  const v = view(out);
  v.setUint16(0, len, LE);
  v.setUint16(2, type, LE);
  out.set(data, NLA_HDRLEN);
  return out;
}

function scalar(size: number, set: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(size);
  set(view(b));
  return b;
}

export const nlaBinary = (type: number, data: Uint8Array): Uint8Array => nla(type, data);
export const nlaFlag = (type: number): Uint8Array => nla(type, new Uint8Array(0));
export const nlaU8 = (type: number, v: number): Uint8Array =>
  nla(
    type,
    scalar(1, (d) => d.setUint8(0, v)),
  );
export const nlaU16 = (type: number, v: number): Uint8Array =>
  nla(
    type,
    scalar(2, (d) => d.setUint16(0, v, LE)),
  );
export const nlaU32 = (type: number, v: number): Uint8Array =>
  nla(
    type,
    scalar(4, (d) => d.setUint32(0, v, LE)),
  );
export const nlaU64 = (type: number, v: bigint): Uint8Array =>
  nla(
    type,
    scalar(8, (d) => d.setBigUint64(0, BigInt.asUintN(64, v), LE)),
  );
export const nlaString = (type: number, s: string): Uint8Array => {
  const text = new TextEncoder().encode(s);
  const z = new Uint8Array(text.length + 1);
  z.set(text);
  return nla(type, z);
};
/** Children are already-encoded attributes; NLA_F_NESTED is set, as strict kernel policies require. */
export const nlaNested = (type: number, children: readonly Uint8Array[]): Uint8Array =>
  nla(type | NLA_F_NESTED, concat(children));

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// ---------- NLMSG_ERROR / NLMSG_DONE ----------

export interface ExtAck {
  msg?: string;
  /** Byte offset into the original request of the attribute the kernel objected to. */
  offset?: number;
  cookie?: Uint8Array;
  /** NLMSGERR_ATTR_POLICY: the violated policy, as NL_POLICY_TYPE_ATTR_* attributes. */
  policy?: NlAttr[];
  missType?: number;
  missNest?: number;
}

export interface NlError {
  /** Positive errno; 0 means this is an ACK. */
  errno: number;
  /** Header of the request this answers. */
  request: NlMsgHeader;
  /** The request's payload as echoed back (absent when NLM_F_CAPPED). */
  requestPayload?: Uint8Array;
  extack?: ExtAck;
}

function decodeExtAck(buf: Uint8Array): ExtAck | undefined {
  if (buf.length === 0) return undefined;
  const ext: ExtAck = {};
  for (const a of decodeAttrs(buf)) {
    if (a.type === NLMSGERR_ATTR_MSG) ext.msg = attrString(a);
    else if (a.type === NLMSGERR_ATTR_OFFS) ext.offset = attrU32(a);
    else if (a.type === NLMSGERR_ATTR_COOKIE) ext.cookie = a.data;
    else if (a.type === NLMSGERR_ATTR_POLICY) ext.policy = decodeAttrs(a.data);
    else if (a.type === NLMSGERR_ATTR_MISS_TYPE) ext.missType = attrU32(a);
    else if (a.type === NLMSGERR_ATTR_MISS_NEST) ext.missNest = attrU32(a);
  }
  return ext;
}

export function decodeNlError(msg: NlMessage): NlError {
  if (msg.header.type !== NLMSG_ERROR) throw decodeError(`message type ${msg.header.type} is not NLMSG_ERROR`);
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw decodeError('short NLMSG_ERROR');
  const error = view(p).getInt32(0, LE);
  if (error > 0) throw decodeError(`NLMSG_ERROR with positive error ${error}`);
  const request = decodeNlMsgHeader(p, 4);
  const out: NlError = { errno: -error | 0, request };
  let tlvStart = 4 + NLMSG_HDRLEN;
  if (!(msg.header.flags & NLM_F_CAPPED)) {
    // The whole request is echoed; its length may exceed what fits, which only a broken sender produces.
    if (request.len < NLMSG_HDRLEN || request.len > p.length - 4)
      throw decodeError('echoed request runs past NLMSG_ERROR');
    out.requestPayload = p.subarray(4 + NLMSG_HDRLEN, 4 + request.len);
    tlvStart = 4 + align4(request.len);
  }
  if (msg.header.flags & NLM_F_ACK_TLVS) {
    const ext = decodeExtAck(p.subarray(Math.min(tlvStart, p.length)));
    if (ext) out.extack = ext;
  }
  return out;
}

/** NLMSG_DONE ends a dump; its payload, when present, is the dump's int error and extended-ACK TLVs. */
export function decodeDone(msg: NlMessage): { errno: number; extack?: ExtAck } {
  if (msg.header.type !== NLMSG_DONE) throw decodeError(`message type ${msg.header.type} is not NLMSG_DONE`);
  if (msg.payload.length < 4) return { errno: 0 };
  const error = view(msg.payload).getInt32(0, LE);
  if (error > 0) throw decodeError(`NLMSG_DONE with positive error ${error}`);
  const out: { errno: number; extack?: ExtAck } = { errno: -error | 0 };
  if (msg.header.flags & NLM_F_ACK_TLVS) {
    const ext = decodeExtAck(msg.payload.subarray(4));
    if (ext) out.extack = ext;
  }
  return out;
}

// ---------- generic netlink ----------

export interface GenlMessage {
  /** The family id (nlmsg_type). */
  family: number;
  cmd: number;
  version: number;
  /** The family's fixed header (hdrsize bytes; NET_DM has none). */
  familyHeader: Uint8Array;
  /** The attribute bytes; decode with decodeAttrs/attrMap. */
  attrs: Uint8Array;
  message: NlMessage;
}

export function decodeGenl(msg: NlMessage, hdrsize = 0): GenlMessage {
  const p = msg.payload;
  if (p.length < GENL_HDRLEN + hdrsize) throw decodeError('short genlmsghdr');
  const attrStart = GENL_HDRLEN + align4(hdrsize);
  return {
    family: msg.header.type,
    cmd: p[0]!,
    version: p[1]!,
    familyHeader: p.subarray(GENL_HDRLEN, GENL_HDRLEN + hdrsize),
    attrs: p.subarray(Math.min(attrStart, p.length)),
    message: msg,
  };
}

export interface GenlSpec {
  family: number;
  cmd: number;
  version: number;
  flags?: number;
  seq?: number;
  pid?: number;
}

export function encodeGenl(spec: GenlSpec, attrs: readonly Uint8Array[] = [], familyHeader?: Uint8Array): Uint8Array {
  const head = new Uint8Array(GENL_HDRLEN);
  head[0] = spec.cmd;
  head[1] = spec.version;
  const parts: Uint8Array[] = [head];
  if (familyHeader && familyHeader.length > 0) parts.push(familyHeader);
  return encodeNlMsg({ type: spec.family, flags: spec.flags, seq: spec.seq, pid: spec.pid }, [...parts, concat(attrs)]);
}

/** The genlmsghdr plus family header and attributes: a request body for NetlinkSocket.request(). */
export function genlBody(cmd: number, version: number, attrs: readonly Uint8Array[] = []): Uint8Array {
  const head = new Uint8Array(GENL_HDRLEN);
  head[0] = cmd;
  head[1] = version;
  return concat([head, ...attrs]);
}
