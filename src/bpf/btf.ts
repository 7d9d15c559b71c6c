// A reader of BTF's enums (pure): the kernel's own BTF or a module's split BTF over it, as /sys/kernel/btf serves them,
// and the drop-reason subsystems named from them (include/net/dropreason.h: subsystem << 16 | its reason).

/** One BTF enum: its name and its members' values and names. */
export interface BtfEnum {
  name: string;
  members: [number, string][];
}

/** What a split BTF needs of its base: its string section's length and a way to read a string in it. */
export interface BtfBase {
  stringsLength: number;
  string(offset: number): string;
}

export interface Btf extends BtfBase {
  /** The enums (and 64-bit enums, values past 2^53 left out) whose names `wanted` takes, in type order. */
  enums: BtfEnum[];
}

const MAGIC = 0xeb9f;
const HEADER_BYTES = 24;
const KIND_ENUM = 6;
const KIND_ENUM64 = 19;
/** Bytes after the 12-byte common part, per kind: a fixed part and a part per member (vlen). */
const EXTRA: Readonly<Record<number, readonly [number, number]>> = {
  1: [4, 0], // INT
  2: [0, 0], // PTR
  3: [12, 0], // ARRAY
  4: [0, 12], // STRUCT
  5: [0, 12], // UNION
  6: [0, 8], // ENUM
  7: [0, 0], // FWD
  8: [0, 0], // TYPEDEF
  9: [0, 0], // VOLATILE
  10: [0, 0], // CONST
  11: [0, 0], // RESTRICT
  12: [0, 0], // FUNC
  13: [0, 8], // FUNC_PROTO
  14: [4, 0], // VAR
  15: [0, 12], // DATASEC
  16: [0, 0], // FLOAT
  17: [4, 0], // DECL_TAG
  18: [0, 0], // TYPE_TAG
  19: [0, 12], // ENUM64
};

/**
 * Parses a BTF blob's enums named as `wanted` likes (only those are decoded); a module's split BTF names strings below
 * base.stringsLength from its base.
 */
export function parseBtf(bytes: Uint8Array, wanted: (name: string) => boolean, base?: BtfBase): Btf {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < HEADER_BYTES || v.getUint16(0, true) !== MAGIC) throw new RangeError('not BTF (bad magic)');
  const hdrLen = v.getUint32(4, true);
  const [typeOff, typeLen, strOff, strLen] = [8, 12, 16, 20].map((o) => v.getUint32(o, true)) as [
    number,
    number,
    number,
    number,
  ];
  const types = hdrLen + typeOff;
  const strings = hdrLen + strOff;
  if (types + typeLen > bytes.byteLength || strings + strLen > bytes.byteLength)
    throw new RangeError('BTF sections run past its end');
  const decoder = new TextDecoder();
  const baseLength = base?.stringsLength ?? 0;
  const string = (offset: number): string => {
    if (offset === 0) return ''; // Anonymous, in a split BTF as in its base.
    if (offset < baseLength) return base!.string(offset);
    const start = strings + offset - baseLength;
    if (start >= strings + strLen) throw new RangeError(`BTF string offset ${offset} past the string section`);
    const end = bytes.indexOf(0, start);
    return decoder.decode(bytes.subarray(start, end < 0 || end > strings + strLen ? strings + strLen : end));
  };
  const enums: BtfEnum[] = [];
  for (let o = types; o < types + typeLen;) {
    const info = v.getUint32(o + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const extra = EXTRA[kind];
    if (!extra) throw new RangeError(`BTF kind ${kind} unknown at byte ${o}`);
    if ((kind === KIND_ENUM || kind === KIND_ENUM64) && wanted(string(v.getUint32(o, true))))
      enums.push(readEnum(v, o, kind, vlen, info, string));
    o += 12 + extra[0] + extra[1] * vlen;
  }
  return { enums, stringsLength: baseLength + strLen, string };
}

function readEnum(
  v: DataView,
  o: number,
  kind: number,
  vlen: number,
  info: number,
  string: (offset: number) => string,
): BtfEnum {
  const signed = (info & 0x80000000) !== 0; // kind_flag: a signed enum
  const members: [number, string][] = [];
  for (let i = 0; i < vlen; i++) {
    if (kind === KIND_ENUM) {
      const m = o + 12 + i * 8;
      members.push([signed ? v.getInt32(m + 4, true) : v.getUint32(m + 4, true), string(v.getUint32(m, true))]);
    } else {
      const m = o + 12 + i * 12;
      const value = (BigInt(v.getUint32(m + 8, true)) << 32n) | BigInt(v.getUint32(m + 4, true));
      const n = signed ? BigInt.asIntN(64, value) : value;
      if (n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER))
        members.push([Number(n), string(v.getUint32(m, true))]);
    }
  }
  return { name: string(v.getUint32(o, true)), members };
}

/** SKB_DROP_REASON_SUBSYS_SHIFT: a subsystem's reasons are its number shifted by this, plus the reason's. */
export const SUBSYS_SHIFT = 16;
const SUBSYS_ENUM = 'skb_drop_reason_subsys';

/** The enums that name drop reasons: the subsystems' list and each subsystem's own (ovs_drop_reason, …). */
export const isReasonEnum = (name: string): boolean =>
  name === SUBSYS_ENUM || (name.endsWith('_drop_reason') && name !== 'skb_drop_reason');

/**
 * The subsystems' reasons as [value, name]: members of a `*_drop_reason` enum whose value lies in a subsystem `subsys`
 * lists (not CORE, not the NUM count). Names are the kernel's, as NET_DM reports them (OVS_DROP_LAST_ACTION); markers
 * (__OVS_DROP_REASON, ___RX_… twins) and counts (OVS_DROP_MAX) are left out. The first enum naming a value wins.
 */
export function subsystemReasons(subsys: BtfEnum | undefined, enums: readonly BtfEnum[]): [number, string][] {
  if (subsys === undefined) return [];
  const count = subsys.members.find(([, name]) => name.endsWith('_NUM'))?.[0] ?? 0;
  const out = new Map<number, string>();
  for (const e of enums) {
    if (e.name === SUBSYS_ENUM || !isReasonEnum(e.name)) continue;
    for (const [value, name] of e.members) {
      const s = Math.floor(value / 2 ** SUBSYS_SHIFT);
      if (s < 1 || s >= count || name.startsWith('_') || name.endsWith('_MAX') || out.has(value)) continue;
      out.set(value, name);
    }
  }
  return [...out];
}
