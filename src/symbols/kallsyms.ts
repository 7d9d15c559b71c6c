// Pure /proc/kallsyms parser and address-sorted index: drop PCs to `symbol+offset` as dropwatch's kas method does.

/** Where a kernel text address falls: the closest symbol at or below it. */
export interface Resolved {
  symbol: string;
  offset: bigint;
  /** Module name without brackets, for symbols from `sym\t[mod]` lines. */
  module?: string;
}

/** Names as [start, end) ranges into the text they came from: a build makes no strings, a lookup slices one. */
export interface NameRecords {
  /**
   * The texts the names were read from: strings, or the latin1 bytes of the text as read from the file (same offsets).
   * The loader keeps bytes because they live outside the JS heap, where the text would swell the young generation.
   * A byte source is decoded whole when a name is first read from it: slicing a string beats decoding each name.
   */
  sources: readonly NameSource[];
  /**
   * RECORD words per index entry: name start, name end, then the source index in the low 16 bits and the module id
   * in the high 16. One interleaved array, so an uncached lookup touches one cache line, not one per parallel array.
   */
  records: Uint32Array;
}

export type NameSource = string | Buffer;

/** Words per entry in NameRecords.records. */
export const RECORD = 3;

/** Sources and modules each get 16 bits of a record's third word. */
const MAX_IDS = 0x10000;

const U64_MAX = 0xffffffffffffffffn;

// 64 KiB of address space per bucket, so each holds few symbols; the table spans the kernel's addresses to its modules.
const BUCKET_SHIFT = 16;

interface Buckets {
  /** The shared high half; -1 (never a high half) when the index is empty. */
  hi: number;
  /** Low half of the first entry with that high half. */
  baseLo: number;
  /** The entries with that high half are [start, end). */
  start: number;
  end: number;
  firstAt: Int32Array;
}

// Host byte order of the 64-bit lanes, so the Uint32 view over the BigUint64Array reads the right halves.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

// Splits a pc into 32-bit halves through a typed array: unlike `pc >> 32n`, it allocates no BigInt.
const PC64 = new BigUint64Array(1);
const PC32 = new Uint32Array(PC64.buffer);

/**
 * An immutable symbol index: unique addresses in ascending order, each with the first symbol (in file order) at that
 * address. Later aliases are dropped at build time because dropwatch never reports them.
 */
export class KallsymsIndex {
  /** Ascending, unique. */
  readonly addresses: BigUint64Array;
  /** Module names; entry 0 is the empty string (no module). */
  readonly modules: readonly string[];
  /** Lines parsed (aliases included). */
  readonly lineCount: number;
  /** Every address read as zero: kptr_restrict hides them from this reader, so nothing can be resolved. */
  readonly hidden: boolean;
  private readonly halves: Uint32Array;
  /** Set when built from ready names (or once `names` has been read). */
  private nameList: string[] | null;
  /** Given, or derived from `records` on first use: resolve() reads module ids from the records. */
  private moduleIdList: Uint32Array | null;
  /** Set when built by KallsymsBuilder: resolve() reads names and modules from here. */
  private readonly records: Uint32Array | null;
  /** Byte sources are replaced by their decoded text on first use (nameFrom). */
  private readonly sources: NameSource[];
  /** Made by the first resolve(): a build should not pay for it, and a run that never resolves never needs it. */
  private buckets: Buckets | null = null;

  constructor(fields: {
    addresses: BigUint64Array;
    names: string[] | NameRecords;
    /** Required with a names list; with NameRecords the records' own module ids are used. */
    moduleIds?: Uint32Array;
    modules: string[];
    lineCount: number;
    hidden: boolean;
  }) {
    this.addresses = fields.addresses;
    this.modules = fields.modules;
    this.lineCount = fields.lineCount;
    this.hidden = fields.hidden;
    this.halves = new Uint32Array(this.addresses.buffer, this.addresses.byteOffset, this.addresses.length * 2);
    if (Array.isArray(fields.names)) {
      this.nameList = fields.names;
      this.moduleIdList = fields.moduleIds ?? new Uint32Array(fields.names.length);
      this.records = null;
      this.sources = [];
    } else {
      const named = fields.names;
      this.nameList = null;
      // Not kept twice: the records hold every entry's module id already.
      this.moduleIdList = null;
      this.records = named.records;
      this.sources = [...named.sources];
    }
  }

  /** Parallel to `addresses`: index into `modules`, 0 for the core kernel. Built on first use from the records. */
  get moduleIds(): Uint32Array {
    if (this.moduleIdList === null) {
      const r = this.records!;
      const ids = new Uint32Array(this.size);
      for (let i = 0; i < ids.length; i++) ids[i] = r[RECORD * i + 2]! >>> 16;
      this.moduleIdList = ids;
    }
    return this.moduleIdList;
  }

  get size(): number {
    return this.addresses.length;
  }

  /** Parallel to `addresses`. Built on first use: resolve() never needs the whole list. */
  get names(): readonly string[] {
    if (this.nameList === null) {
      const list = new Array<string>(this.size);
      for (let i = 0; i < list.length; i++) list[i] = this.nameAt(i);
      this.nameList = list;
    }
    return this.nameList;
  }

  private nameAt(i: number): string {
    const r = this.records;
    if (r === null) return this.nameList![i]!;
    const k = RECORD * i;
    return this.nameFrom(r[k + 2]! & 0xffff, r[k]!, r[k + 1]!);
  }

  /** Characters [start, end) of source `i`; a byte source is decoded whole first (latin1, as the builder read it). */
  private nameFrom(i: number, start: number, end: number): string {
    let source = this.sources[i]!;
    if (typeof source !== 'string') this.sources[i] = source = source.toString('latin1');
    return source.slice(start, end);
  }

  /** Bucket starts over the entries that share the high half of the highest address (the kernel's 0xffffffff). */
  private makeBuckets(): Buckets {
    const h = this.halves;
    const n = this.addresses.length;
    const hi = n > 0 ? h[2 * (n - 1) + HI]! : -1;
    let start = n;
    while (start > 0 && h[2 * (start - 1) + HI] === hi) start--;
    const baseLo = start < n ? h[2 * start + LO]! : 0;
    const last = n > 0 ? h[2 * (n - 1) + LO]! : 0;
    // firstAt[k]: first entry in bucket k or later; the final element is `n`, the end of the range.
    const firstAt = new Int32Array(((last - baseLo) >>> BUCKET_SHIFT) + 2);
    let k = 0;
    for (let i = start; i < n; i++) {
      const bucket = (h[2 * i + LO]! - baseLo) >>> BUCKET_SHIFT;
      while (k <= bucket) firstAt[k++] = i;
    }
    while (k < firstAt.length) firstAt[k++] = n;
    return (this.buckets = { hi, baseLo, start, end: n, firstAt });
  }

  /**
   * The closest symbol at or below pc, as dropwatch's lookup_kas_proc() picks it; null below the lowest symbol,
   * when that symbol sits at address 0 (dropwatch treats a zero base as "not found"), or when hidden.
   */
  resolve(pc: bigint): Resolved | null {
    if (pc < 0n || pc > U64_MAX) return null;
    PC64[0] = pc;
    const hi = PC32[HI]!;
    const lo = PC32[LO]!;
    const h = this.halves;
    const b = this.buckets ?? this.makeBuckets();
    let low = 0;
    let high = this.addresses.length; // first index with address > pc lies in [low, high]
    if (hi === b.hi) {
      // Almost every kernel address shares one high half: its bucket narrows the search, and low halves decide it.
      if (lo < b.baseLo) low = high = b.start;
      else {
        const k = (lo - b.baseLo) >>> BUCKET_SHIFT;
        if (k >= b.firstAt.length - 1) low = b.end;
        else {
          low = b.firstAt[k]!;
          high = b.firstAt[k + 1]!;
        }
      }
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (h[2 * mid + LO]! <= lo) low = mid + 1;
        else high = mid;
      }
    } else {
      // Index of the last address <= pc: number compares on the halves, no BigInt per step.
      while (low < high) {
        const mid = (low + high) >>> 1;
        const mh = h[2 * mid + HI]!;
        if (mh < hi || (mh === hi && h[2 * mid + LO]! <= lo)) low = mid + 1;
        else high = mid;
      }
    }
    const i = low - 1;
    if (i < 0) return null;
    const bh = h[2 * i + HI]!;
    const bl = h[2 * i + LO]!;
    if (bh === 0 && bl === 0) return null;
    // pc - base on the halves (pc >= base here): a borrow from the high half when the low half underflows.
    let dlo = lo - bl;
    let dhi = hi - bh;
    if (dlo < 0) {
      dlo += 0x100000000;
      dhi -= 1;
    }
    // delta >= LLONG_MAX is dropwatch's "not found": it starts with min_delta = LLONG_MAX and keeps only smaller ones.
    if (dhi > 0x7fffffff || (dhi === 0x7fffffff && dlo === 0xffffffff)) return null;
    // Below 2^53 the delta is exact as a double, so one BigInt(number) replaces BigInt subtraction.
    const offset = dhi < 0x200000 ? BigInt(dhi * 0x100000000 + dlo) : pc - this.addresses[i]!;
    const r = this.records;
    let symbol: string;
    let mod: number;
    if (r !== null) {
      const k = RECORD * i;
      const ids = r[k + 2]!;
      symbol = this.nameFrom(ids & 0xffff, r[k]!, r[k + 1]!);
      mod = ids >>> 16;
    } else {
      symbol = this.nameList![i]!;
      mod = this.moduleIdList![i]!;
    }
    return mod === 0 ? { symbol, offset } : { symbol, offset, module: this.modules[mod]! };
  }
}

// Hex digit values for char codes below 128, -1 elsewhere.
const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[97 + c] = 10 + c;
  HEX[65 + c] = 10 + c;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Index of the next `ch` at or after `from`, or the text length when there is none. */
function nextAt(text: string, ch: string, from: number): number {
  const i = text.indexOf(ch, from);
  return i < 0 ? text.length : i;
}

/** The same characters in a string of its own (module names are short and come once per module). */
function freshCopy(s: string): string {
  const codes = new Array<number>(s.length);
  for (let i = 0; i < s.length; i++) codes[i] = s.charCodeAt(i);
  return String.fromCharCode(...codes);
}

function grow(a: Uint32Array, size: number): Uint32Array {
  const b = new Uint32Array(size);
  b.set(a);
  return b;
}

/**
 * Reads the fields of kallsyms lines from one text. Written for the baseline tiers too, since most of a process's only
 * parse runs before the optimizing compiler is done with it: space tests inlined, not called, and rare work apart.
 */
class LineReader {
  /** The address's 32-bit halves. */
  hi = 0;
  lo = 0;
  /** The name is [nameStart, nameEnd); what follows it on the line (a `[mod]`) starts at nameEnd. */
  nameStart = 0;
  nameEnd = 0;
  // Where each whitespace character next occurs at or after the last name searched, or -1 before the first search.
  private nextSp = -1;
  private nextTab = -1;
  private nextCr = -1;
  private nextVt = -1;
  private nextFf = -1;

  constructor(private readonly text: string) {}

  /** Reads the line [start, eol): false when it is not an address (at most 16 hex digits), whitespace, type, name. */
  read(start: number, eol: number): boolean {
    const text = this.text;
    // Hex digits shifted into a (hi, lo) pair of 32-bit halves; more than 16 digits rejects the line below.
    let hi = 0;
    let lo = 0;
    let c = 0;
    let p = start;
    while (p < eol) {
      c = text.charCodeAt(p);
      const v = c < 128 ? HEX[c]! : -1;
      if (v < 0) break;
      hi = (hi << 4) | (lo >>> 28);
      lo = (lo << 4) | v;
      p++;
    }
    // c is the character after the digits (p < eol); whitespace is ' ' or \t..\r
    if (p === start || p - start > 16 || p >= eol || !(c === 32 || (c >= 9 && c <= 13))) return false;
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    if (
      c === 32 &&
      p + 3 < eol &&
      !((c = text.charCodeAt(p + 1)) === 32 || (c >= 9 && c <= 13)) &&
      text.charCodeAt(p + 2) === 32 &&
      !((c = text.charCodeAt(p + 3)) === 32 || (c >= 9 && c <= 13))
    ) {
      this.nameStart = p + 3;
      this.nameEnd = this.kernelNameEnd(p + 3, eol);
      return true;
    }
    return this.readLoose(p, eol);
  }

  /**
   * The end of a name in the kernel's own layout, "<addr> <t> <name>": the first whitespace, found by native indexOf
   * calls rather than a character loop. Each search position is kept until a name passes it, so a character that never
   * occurs is searched for once per text, not once per line.
   */
  private kernelNameEnd(nameStart: number, eol: number): number {
    const text = this.text;
    if (this.nextSp <= nameStart) this.nextSp = nextAt(text, ' ', nameStart);
    if (this.nextTab <= nameStart) this.nextTab = nextAt(text, '\t', nameStart);
    if (this.nextCr <= nameStart) this.nextCr = nextAt(text, '\r', nameStart);
    if (this.nextVt <= nameStart) this.nextVt = nextAt(text, '\v', nameStart);
    if (this.nextFf <= nameStart) this.nextFf = nextAt(text, '\f', nameStart);
    let end = eol;
    if (this.nextSp < end) end = this.nextSp;
    if (this.nextTab < end) end = this.nextTab;
    if (this.nextCr < end) end = this.nextCr;
    if (this.nextVt < end) end = this.nextVt;
    if (this.nextFf < end) end = this.nextFf;
    return end;
  }

  /** Type and name in any other spacing, from the whitespace at p after the address; false when there is no name. */
  private readLoose(p: number, eol: number): boolean {
    const text = this.text;
    let c = 0;
    // whitespace, type letter, whitespace
    while (p < eol && ((c = text.charCodeAt(p)) === 32 || (c >= 9 && c <= 13))) p++;
    while (p < eol && !((c = text.charCodeAt(p)) === 32 || (c >= 9 && c <= 13))) p++;
    while (p < eol && ((c = text.charCodeAt(p)) === 32 || (c >= 9 && c <= 13))) p++;
    this.nameStart = p;
    while (p < eol && !((c = text.charCodeAt(p)) === 32 || (c >= 9 && c <= 13))) p++;
    this.nameEnd = p;
    return p > this.nameStart;
  }
}

/**
 * Accumulates kallsyms lines, possibly in several slices (so a caller can yield to the event loop between them),
 * then builds the sorted index once.
 *
 * Entries are written straight into the layouts the index keeps (address halves as in a BigUint64Array, name
 * records), and the builder notes where the address order descends as it goes: for an already-sorted file, which
 * /proc/kallsyms is apart from module and BPF sections, build() is a few native copies instead of passes over every
 * line (a loop that runs once per process mostly runs unoptimized).
 */
export class KallsymsBuilder {
  private halves: Uint32Array;
  private records: Uint32Array;
  /** Entries stored; a line at the same address as the entry before it is not stored (see add()). */
  private count = 0;
  /** Lines parsed, aliases included. */
  private lineCount = 0;
  private prevHi = 0;
  private prevLo = 0;
  /** Entry indices where the address is lower than the entry before: starts of sorted runs after the first. */
  private readonly descents: number[] = [];
  private readonly sources: NameSource[] = [];
  private readonly modules: string[] = [''];
  private readonly moduleIdByName = new Map<string, number>();
  // Module lines come in runs of one module: remembering the last raw `[...]` text skips the trim and Map lookup.
  private lastModuleRaw = '';
  private lastModuleId = 0;
  private allZero = true;
  private built = false;

  /** @param expectedLines capacity to start with: a typical size spares regrowing, and the garbage it leaves. */
  constructor(expectedLines = 1024) {
    const capacity = Math.max(16, Math.ceil(expectedLines));
    this.halves = new Uint32Array(2 * capacity);
    this.records = new Uint32Array(RECORD * capacity);
  }

  /**
   * Parses up to `maxLines` lines of `text` starting at `pos` (a line start) and returns where it stopped:
   * text.length when done. Lines that do not parse are skipped. With `bytes` (text's latin1 encoding, e.g. the file's
   * bytes it was decoded from), names are read from the bytes later and the index does not keep the string.
   */
  addLines(text: string, pos = 0, maxLines = Infinity, bytes?: Buffer): number {
    if (this.built) throw new Error('KallsymsBuilder: addLines() after build()');
    const n = text.length;
    if (pos >= n) return n;
    const source = this.sourceFor(bytes ?? text);
    const line = new LineReader(text);
    let linesRead = 0;
    while (pos < n && linesRead++ < maxLines) {
      let eol = text.indexOf('\n', pos);
      if (eol < 0) eol = n;
      const start = pos;
      pos = eol + 1;
      if (!line.read(start, eol)) continue;
      const mod = line.nameEnd < eol ? this.moduleAfter(text, line.nameEnd, eol) : 0;
      this.lineCount++;
      this.add(line.hi, line.lo, line.nameStart, line.nameEnd, (source | (mod << 16)) >>> 0);
    }
    return Math.min(pos, n);
  }

  /** Stores an entry, unless it is at the address of the entry before: that earlier line wins in any stable order. */
  private add(hi: number, lo: number, nameStart: number, nameEnd: number, ids: number): void {
    const k = this.count;
    if (k > 0) {
      if (hi === this.prevHi && lo === this.prevLo) return;
      if (hi < this.prevHi || (hi === this.prevHi && lo < this.prevLo)) this.descents.push(k);
    }
    if ((hi | lo) !== 0) this.allZero = false;
    this.prevHi = hi;
    this.prevLo = lo;
    if (2 * k === this.halves.length) {
      this.halves = grow(this.halves, 4 * k);
      this.records = grow(this.records, 2 * RECORD * k);
    }
    this.halves[2 * k + HI] = hi;
    this.halves[2 * k + LO] = lo;
    const r = RECORD * k;
    this.records[r] = nameStart;
    this.records[r + 1] = nameEnd;
    this.records[r + 2] = ids;
    this.count = k + 1;
  }

  /** Module id of a `[mod]` after the name that ends at p (whitespace first), 0 when there is none. */
  private moduleAfter(text: string, p: number, eol: number): number {
    while (p < eol && isSpace(text.charCodeAt(p))) p++;
    if (p >= eol || text.charCodeAt(p) !== 91 /* [ */) return 0;
    let close = p + 1;
    while (close < eol && text.charCodeAt(close) !== 93 /* ] */) close++;
    return close < eol ? this.moduleId(text.slice(p + 1, close)) : 0;
  }

  private sourceFor(source: NameSource): number {
    const last = this.sources.length - 1;
    if (last >= 0 && this.sources[last] === source) return last;
    if (last + 1 >= MAX_IDS) throw new RangeError(`kallsyms: more than ${MAX_IDS} name sources`);
    this.sources.push(source);
    return last + 1;
  }

  private moduleId(raw: string): number {
    if (raw === this.lastModuleRaw && this.lastModuleId !== 0) return this.lastModuleId;
    const name = raw.trim();
    let id = this.moduleIdByName.get(name);
    if (id === undefined) {
      id = this.modules.length;
      if (id >= MAX_IDS) throw new RangeError(`kallsyms: more than ${MAX_IDS - 1} module names`);
      // A copy, not a slice: a sliced string would keep the whole chunk of text it came from alive.
      this.modules.push(freshCopy(name));
      this.moduleIdByName.set(name, id);
    }
    this.lastModuleRaw = raw;
    this.lastModuleId = id;
    return id;
  }

  /** The index over what was added. It takes over the builder's arrays, so the builder takes no lines after it. */
  build(): KallsymsIndex {
    this.built = true;
    const count = this.count;
    let halves: Uint32Array;
    let records: Uint32Array;
    if (this.descents.length === 0) {
      // Ascending and alias-free already: keep the builder's arrays when they are mostly full (a copy would leave
      // old-generation garbage that only a full GC gives back), else copy out the filled part.
      const keep = 4 * count >= 3 * (this.halves.length / 2);
      halves = keep ? this.halves.subarray(0, 2 * count) : this.halves.slice(0, 2 * count);
      records = keep ? this.records.subarray(0, RECORD * count) : this.records.slice(0, RECORD * count);
    } else {
      const h = this.halves;
      const order = stableOrder(h, count, this.descents);
      // Keep the first entry of each run of equal addresses (the order is stable, so that is the first in the file).
      let unique = 0;
      let prevHi = -1;
      let prevLo = -1;
      for (let k = 0; k < count; k++) {
        const i = order[k]!;
        const hi = h[2 * i + HI]!;
        const lo = h[2 * i + LO]!;
        if (hi === prevHi && lo === prevLo) continue;
        prevHi = hi;
        prevLo = lo;
        order[unique++] = i;
      }
      halves = new Uint32Array(2 * unique);
      records = new Uint32Array(RECORD * unique);
      const inRecords = this.records;
      for (let k = 0; k < unique; k++) {
        const i = order[k]!;
        halves[2 * k] = h[2 * i]!;
        halves[2 * k + 1] = h[2 * i + 1]!;
        for (let w = 0; w < RECORD; w++) records[RECORD * k + w] = inRecords[RECORD * i + w]!;
      }
    }

    return new KallsymsIndex({
      addresses: new BigUint64Array(halves.buffer, halves.byteOffset, halves.length / 2),
      names: { sources: [...this.sources], records },
      modules: [...this.modules],
      lineCount: this.lineCount,
      hidden: this.lineCount > 0 && this.allZero,
    });
  }
}

/**
 * Entry indices in ascending (address, file position) order. The entries form sorted runs split at `descents`, so
 * this is a natural merge sort: merge the runs, never comparing inside one. Merges take from the left run on ties,
 * which keeps file order among aliases (the first one wins, as in dropwatch).
 */
function stableOrder(h: Uint32Array, count: number, descents: readonly number[]): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const b = new Int32Array(descents.length + 2);
  for (let k = 0; k < descents.length; k++) b[k + 1] = descents[k]!;
  b[b.length - 1] = count;
  const tmp = new Uint32Array(count);
  // entry a sorts no later than entry c
  const le = (a: number, c: number): boolean => {
    const ah = h[2 * a + HI]!;
    const ch = h[2 * c + HI]!;
    return ah < ch || (ah === ch && h[2 * a + LO]! <= h[2 * c + LO]!);
  };

  const merge = (lo: number, mid: number, hi: number): void => {
    if (le(order[mid - 1]!, order[mid]!)) return; // already in order: common when a section is appended sorted
    const len = mid - lo;
    tmp.set(order.subarray(lo, mid));
    let i = 0;
    let j = mid;
    let o = lo;
    while (i < len && j < hi) {
      const a = tmp[i]!;
      const c = order[j]!;
      if (le(a, c)) {
        order[o++] = a;
        i++;
      } else {
        order[o++] = c;
        j++;
      }
    }
    if (i < len) order.set(tmp.subarray(i, len), o);
  };

  // Split the run list where it halves the element count, not the run count: one long sorted run then gets merged
  // once at the top instead of once per level, and the recursion stays O(log n) deep.
  const sort = (rl: number, rr: number): void => {
    if (rr - rl < 2) return;
    const target = (b[rl]! + b[rr]!) / 2;
    let x = rl + 1;
    let z = rr - 1;
    while (x < z) {
      const m = (x + z) >>> 1;
      if (b[m]! < target) x = m + 1;
      else z = m;
    }
    if (x > rl + 1 && target - b[x - 1]! < b[x]! - target) x--;
    sort(rl, x);
    sort(x, rr);
    merge(b[rl]!, b[x]!, b[rr]!);
  };
  sort(0, b.length - 1);
  return order;
}

/**
 * Parses /proc/kallsyms text (`ffffffff81000000 T _stext`, `ffffffffc0a12010 t sym\t[mod]`) into an index.
 * Lines that do not parse are skipped. Input need not be sorted: modules and BPF symbols are not in address order.
 */
export function parseKallsyms(text: string): KallsymsIndex {
  const builder = new KallsymsBuilder();
  builder.addLines(text);
  return builder.build();
}
