// Pure /proc/kallsyms parser and address-sorted index: turns drop PCs into `symbol+offset` the way dropwatch's kas method does.

/** Where a kernel text address falls: the closest symbol at or below it. */
export interface Resolved {
  symbol: string;
  offset: bigint;
  /** Module name without brackets, for symbols from `sym\t[mod]` lines. */
  module?: string;
}

/** dropwatch starts its search with min_delta = LLONG_MAX and keeps only strictly smaller deltas. */
const MAX_DELTA = 0x7fffffffffffffffn;

// Host byte order of the 64-bit lanes, so the Uint32 view over the BigUint64Array reads the right halves.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

/**
 * An immutable symbol index: unique addresses in ascending order, each with the first symbol (in file order) at that
 * address. Later aliases are dropped at build time because dropwatch never reports them.
 */
export class KallsymsIndex {
  /** Ascending, unique. */
  readonly addresses: BigUint64Array;
  /** Parallel to `addresses`. */
  readonly names: readonly string[];
  /** Parallel to `addresses`: index into `modules`, 0 for the core kernel. */
  readonly moduleIds: Uint32Array;
  /** Module names; entry 0 is the empty string (no module). */
  readonly modules: readonly string[];
  /** Lines parsed (aliases included). */
  readonly lineCount: number;
  /** Every address read as zero: kptr_restrict hides them from this reader, so nothing can be resolved. */
  readonly hidden: boolean;
  private readonly halves: Uint32Array;

  constructor(fields: {
    addresses: BigUint64Array;
    names: string[];
    moduleIds: Uint32Array;
    modules: string[];
    lineCount: number;
    hidden: boolean;
  }) {
    this.addresses = fields.addresses;
    this.names = fields.names;
    this.moduleIds = fields.moduleIds;
    this.modules = fields.modules;
    this.lineCount = fields.lineCount;
    this.hidden = fields.hidden;
    this.halves = new Uint32Array(this.addresses.buffer, this.addresses.byteOffset, this.addresses.length * 2);
  }

  get size(): number {
    return this.addresses.length;
  }

  /**
   * The closest symbol at or below pc, as dropwatch's lookup_kas_proc() picks it; null below the lowest symbol,
   * when that symbol sits at address 0 (dropwatch treats a zero base as "not found"), or when hidden.
   */
  resolve(pc: bigint): Resolved | null {
    const i = this.floorIndex(pc);
    if (i < 0) return null;
    const base = this.addresses[i]!;
    if (base === 0n) return null;
    const offset = pc - base;
    if (offset >= MAX_DELTA) return null;
    const mod = this.moduleIds[i]!;
    return mod === 0
      ? { symbol: this.names[i]!, offset }
      : { symbol: this.names[i]!, offset, module: this.modules[mod]! };
  }

  /** Index of the last address <= pc, or -1. Compares 32-bit halves so the search allocates no BigInts. */
  private floorIndex(pc: bigint): number {
    if (pc < 0n || pc > 0xffffffffffffffffn) return -1;
    const hi = Number(pc >> 32n);
    const lo = Number(pc & 0xffffffffn);
    const h = this.halves;
    let low = 0;
    let high = this.addresses.length; // first index with address > pc lies in [low, high]
    while (low < high) {
      const mid = (low + high) >>> 1;
      const mh = h[2 * mid + HI]!;
      if (mh < hi || (mh === hi && h[2 * mid + LO]! <= lo)) low = mid + 1;
      else high = mid;
    }
    return low - 1;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
}

/**
 * Accumulates kallsyms lines, possibly in several slices (so a caller can yield to the event loop between them),
 * then builds the sorted index once.
 */
export class KallsymsBuilder {
  // Growable plain arrays; 64-bit addresses as two 32-bit halves to avoid a BigInt per line.
  private readonly his: number[] = [];
  private readonly los: number[] = [];
  private readonly names: string[] = [];
  private readonly mods: number[] = [];
  private readonly modules: string[] = [''];
  private readonly moduleIdByName = new Map<string, number>();
  private allZero = true;

  /**
   * Parses up to `maxLines` lines of `text` starting at `pos` (a line start) and returns where it stopped:
   * text.length when done. Lines that do not parse are skipped.
   */
  addLines(text: string, pos = 0, maxLines = Infinity): number {
    const n = text.length;
    let lines = 0;
    while (pos < n && lines++ < maxLines) {
      let eol = text.indexOf('\n', pos);
      if (eol < 0) eol = n;
      const lineStart = pos;
      pos = eol + 1;

      // address: hex digits shifted into a (hi, lo) pair of 32-bit halves; no slices, no parseInt
      let p = lineStart;
      let hi = 0;
      let lo = 0;
      for (;;) {
        const v = hexValue(text.charCodeAt(p));
        if (v < 0 || p >= eol) break;
        hi = hi * 16 + Math.floor(lo / 0x10000000);
        lo = (lo % 0x10000000) * 16 + v;
        p++;
      }
      const addrLen = p - lineStart;
      if (addrLen === 0 || addrLen > 16 || p >= eol || !isSpace(text.charCodeAt(p))) continue;
      // type letter
      while (p < eol && isSpace(text.charCodeAt(p))) p++;
      while (p < eol && !isSpace(text.charCodeAt(p))) p++;
      while (p < eol && isSpace(text.charCodeAt(p))) p++;
      // name
      const nameStart = p;
      while (p < eol && !isSpace(text.charCodeAt(p))) p++;
      if (p === nameStart) continue;
      const name = text.slice(nameStart, p);
      // optional [module]
      let mod = 0;
      while (p < eol && isSpace(text.charCodeAt(p))) p++;
      if (p < eol && text.charCodeAt(p) === 91 /* [ */) {
        const close = text.indexOf(']', p + 1);
        if (close > p && close < eol) mod = this.moduleId(text.slice(p + 1, close).trim());
      }
      if (hi !== 0 || lo !== 0) this.allZero = false;
      this.his.push(hi);
      this.los.push(lo);
      this.names.push(name);
      this.mods.push(mod);
    }
    return Math.min(pos, n);
  }

  private moduleId(name: string): number {
    let id = this.moduleIdByName.get(name);
    if (id === undefined) {
      id = this.modules.length;
      this.modules.push(name);
      this.moduleIdByName.set(name, id);
    }
    return id;
  }

  build(): KallsymsIndex {
    const { his, los, names, mods } = this;
    const count = names.length;
    // Stable order by address: ties keep file order, so the first alias in the file wins as in dropwatch.
    let sorted = true;
    for (let i = 1; i < count && sorted; i++) {
      if (his[i]! < his[i - 1]! || (his[i] === his[i - 1] && los[i]! < los[i - 1]!)) sorted = false;
    }
    const order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    if (!sorted) {
      order.sort((a, b) => his[a]! - his[b]! || los[a]! - los[b]! || a - b);
    }

    // Keep the first entry of each run of equal addresses.
    let unique = 0;
    for (let k = 0; k < count; k++) {
      const i = order[k]!;
      if (k > 0) {
        const j = order[k - 1]!;
        if (his[i] === his[j] && los[i] === los[j]) continue;
      }
      order[unique++] = i;
    }

    const addresses = new BigUint64Array(unique);
    const halves = new Uint32Array(addresses.buffer);
    const outNames = new Array<string>(unique);
    const moduleIds = new Uint32Array(unique);
    for (let k = 0; k < unique; k++) {
      const i = order[k]!;
      halves[2 * k + HI] = his[i]!;
      halves[2 * k + LO] = los[i]!;
      outNames[k] = names[i]!;
      moduleIds[k] = mods[i]!;
    }

    return new KallsymsIndex({
      addresses,
      names: outNames,
      moduleIds,
      modules: [...this.modules],
      lineCount: count,
      hidden: count > 0 && this.allZero,
    });
  }
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
