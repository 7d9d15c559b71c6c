// Reads /proc/kallsyms once, in the background, and wraps the index in a per-address cache for the CLI.

import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { DropwatchError } from '../errors/index.js';
import { KallsymsBuilder, KallsymsIndex, parseKallsyms, type Resolved } from './kallsyms.js';

export const KALLSYMS_PATH = '/proc/kallsyms';

/** ok: addresses resolve; hidden: kptr_restrict zeroed every address; unavailable: the file could not be read. */
export type SymbolStatus = 'ok' | 'hidden' | 'unavailable';

export interface SymbolTable {
  readonly status: SymbolStatus;
  /** Why the table is unavailable (E_IO wrapping the fs error). */
  readonly error?: DropwatchError;
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

function tableFromIndex(index: KallsymsIndex, cacheLimit?: number): SymbolTable {
  if (index.hidden) return { status: 'hidden', index, resolve: () => null };
  return { status: 'ok', index, resolve: cachedResolver((pc) => index.resolve(pc), cacheLimit) };
}

// Parse for about this long per event-loop turn, so keystrokes at the prompt wait at most a few ms. A time budget
// rather than a line count: early lines run unoptimized (~1-2 us each), later ones ~0.1-0.2 us once the parse loop
// has been compiled, and a loaded machine stretches both.
const SLICE_MS = 6;
// Lines per addLines() call between clock checks: ~2-3 ms even before the parse loop is optimized.
const LINES_PER_CHECK = 1_000;
// Bytes per read of the file. Decoding the whole 5 MB file to one string costs ~20 ms in one go on the project VM
// (fresh memory, page faults), and fs.readFile adds a same-sized concat; chunks spread both over many turns.
const CHUNK_BYTES = 256 * 1024;

const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

async function addInSlices(builder: KallsymsBuilder, text: string): Promise<void> {
  let pos = 0;
  while (pos < text.length) {
    const until = performance.now() + SLICE_MS;
    do pos = builder.addLines(text, pos, LINES_PER_CHECK);
    while (pos < text.length && performance.now() < until);
    if (pos < text.length) await nextTurn();
  }
}

/** Reads the file in chunks and parses each run of whole lines as it arrives (each becomes one name source). */
async function parseFileInSlices(path: string): Promise<KallsymsIndex> {
  const file = await open(path, 'r');
  try {
    const builder = new KallsymsBuilder();
    let carry: Buffer | null = null; // a line split across reads
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const { bytesRead } = await file.read(chunk, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      let data = chunk.subarray(0, bytesRead);
      if (carry !== null) data = Buffer.concat([carry, data]);
      const cut = data.lastIndexOf(10) + 1;
      carry = cut < data.length ? data.subarray(cut) : null;
      if (cut > 0) await addInSlices(builder, data.toString('latin1', 0, cut));
    }
    if (carry !== null) await addInSlices(builder, carry.toString('latin1'));
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
    .then((index) => tableFromIndex(index, options.cacheLimit))
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
