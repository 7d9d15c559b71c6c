// Reads /proc/kallsyms once, in the background, and wraps the index in a per-address cache for the CLI.

import { open } from 'node:fs/promises';
import { DropwatchError } from '../errors/index.js';
import { KallsymsBuilder, KallsymsIndex, parseKallsyms, type Resolved } from './kallsyms.js';
import { hiddenCause, readAddressVisibility, type AddressVisibility } from './visibility.js';

export const KALLSYMS_PATH = '/proc/kallsyms';

/** ok: addresses resolve; hidden: kptr_restrict zeroed every address; unavailable: the file could not be read. */
export type SymbolStatus = 'ok' | 'hidden' | 'unavailable';

export interface SymbolTable {
  readonly status: SymbolStatus;
  /** Why the table is unavailable (E_IO wrapping the fs error). */
  readonly error?: DropwatchError;
  /** Why addresses are hidden (status 'hidden'): kptr_restrict, or a missing CAP_SYSLOG. */
  readonly cause?: string;
  readonly index: KallsymsIndex | null;
  /** Cached lookup; always null unless status is 'ok'. */
  resolve(pc: bigint): Resolved | null;
}

export interface LoadOptions {
  path?: string;
  /** For tests: replaces the file read. */
  readFile?: (path: string) => Promise<string>;
  /** Distinct addresses remembered before the cache is cleared (bounds memory in a storm). */
  cacheLimit?: number;
  /** For tests: replaces reading kptr_restrict and CAP_SYSLOG from /proc when addresses are hidden. */
  visibility?: () => AddressVisibility;
}

/** Wraps a lookup function in a bounded cache keyed by address (null answers are cached too). */
export function cachedResolver(
  lookup: (pc: bigint) => Resolved | null,
  limit = 65536,
): (pc: bigint) => Resolved | null {
  const cache = new Map<bigint, Resolved | null>();
  return (pc) => {
    const hit = cache.get(pc);
    if (hit !== undefined) return hit;
    const found = lookup(pc);
    if (cache.size >= limit) cache.clear();
    cache.set(pc, found);
    return found;
  };
}

/** Builds a table from kallsyms text already in hand. */
export function symbolTableFromText(text: string, cacheLimit?: number): SymbolTable {
  return tableFromIndex(parseKallsyms(text), cacheLimit);
}

function tableFromIndex(
  index: KallsymsIndex,
  cacheLimit?: number,
  visibility: () => AddressVisibility = readAddressVisibility,
): SymbolTable {
  if (index.hidden) return { status: 'hidden', cause: hiddenCause(visibility()), index, resolve: () => null };
  return { status: 'ok', index, resolve: cachedResolver((pc) => index.resolve(pc), cacheLimit) };
}

// Parse for this long per event-loop turn, so keystrokes at the prompt wait little. A time budget, not a line count,
// because lines parse much faster once the loop is compiled, and a loaded machine slows both.
const SLICE_MS = 6;
// Lines per addLines() call between clock checks: few enough to stay within SLICE_MS before the loop is optimized.
const LINES_PER_CHECK = 1_000;
// Bytes of the file parsed at a time: decoding the whole file at once (or fs.readFile's concat) stalls the prompt.
// The kernel hands out /proc/kallsyms a page per read(2), so many reads fill a chunk before it is parsed.
const CHUNK_BYTES = 256 * 1024;

// Capacity to start the index with: a typical /proc/kallsyms line count, so the arrays need not grow on the way.
const EXPECTED_LINES = 131_072;

const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

async function addInSlices(builder: KallsymsBuilder, text: string, bytes?: Buffer): Promise<void> {
  let pos = 0;
  while (pos < text.length) {
    const until = performance.now() + SLICE_MS;
    do pos = builder.addLines(text, pos, LINES_PER_CHECK, bytes);
    while (pos < text.length && performance.now() < until);
    if (pos < text.length) await nextTurn();
  }
}

/**
 * Reads the file a chunk at a time and parses each chunk's whole lines (each chunk becomes one name source). The index
 * keeps the chunks' bytes, not the decoded text: see NameRecords. Every chunk is a buffer of its own, filled to the
 * end, so a few buffers hold the whole file; a line cut at a chunk's end is copied to the start of the next.
 */
async function parseFileInSlices(path: string): Promise<KallsymsIndex> {
  const file = await open(path, 'r');
  try {
    const builder = new KallsymsBuilder(EXPECTED_LINES);
    let chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await file.read(chunk, filled, chunk.length - filled, null);
      filled += bytesRead;
      const eof = bytesRead === 0;
      if (!eof && filled < chunk.length) continue;
      let data = chunk.subarray(0, filled);
      // The last chunk is usually part-filled: keep an exact copy rather than the whole buffer.
      if (eof && filled < chunk.length / 2) data = Buffer.from(data);
      const cut = eof ? data.length : data.lastIndexOf(10) + 1;
      if (!eof && cut === 0) {
        // One line longer than the buffer: read on into a bigger one (never seen in a real kallsyms).
        chunk = Buffer.concat([data], 2 * chunk.length);
        continue;
      }
      // The line split across the end of this chunk starts the next one.
      const next: Buffer | null = eof ? null : Buffer.allocUnsafe(CHUNK_BYTES);
      if (next !== null) filled = data.copy(next, 0, cut);
      if (cut > 0) await addInSlices(builder, data.toString('latin1', 0, cut), data);
      if (next === null) break;
      chunk = next;
    }
    return builder.build();
  } finally {
    await file.close();
  }
}

async function parseTextInSlices(text: string): Promise<KallsymsIndex> {
  const builder = new KallsymsBuilder();
  await addInSlices(builder, text);
  return builder.build();
}

/**
 * Starts reading kallsyms now and returns a promise that never rejects, so the CLI can call this at startup and await
 * it only when the first address must be printed; a failure becomes status 'unavailable' (raw addresses, as dropwatch).
 */
export function loadSymbolTable(options: LoadOptions = {}): Promise<SymbolTable> {
  const path = options.path ?? KALLSYMS_PATH;
  const read = options.readFile;
  // The executor turns a synchronous throw from the reader into the same 'unavailable' answer.
  return new Promise<KallsymsIndex>((resolve) =>
    resolve(read ? Promise.resolve(read(path)).then(parseTextInSlices) : parseFileInSlices(path)),
  )
    .then((index) => tableFromIndex(index, options.cacheLimit, options.visibility))
    .catch((cause: unknown): SymbolTable => {
      const detail = cause instanceof Error ? cause.message : String(cause);
      return {
        status: 'unavailable',
        error: new DropwatchError('E_IO', `cannot read ${path}: ${detail}`, { cause }),
        index: null,
        resolve: () => null,
      };
    });
}
