// Reads /proc/kallsyms once, in the background, and wraps the index in a per-address cache for the CLI.

import { readFile as fsReadFile } from 'node:fs/promises';
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

// 5k lines per event-loop turn (5-25 ms on this 2-core VM under load), so keystrokes at the prompt are not held up by the parse.
const LINES_PER_SLICE = 5_000;

async function parseInSlices(text: string): Promise<KallsymsIndex> {
  const builder = new KallsymsBuilder();
  let pos = 0;
  while (pos < text.length) {
    pos = builder.addLines(text, pos, LINES_PER_SLICE);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return builder.build();
}

/**
 * Starts reading kallsyms now and returns a promise that never rejects, so the CLI can call this at startup and await
 * it only when the first address must be printed; a failure becomes status 'unavailable' (raw addresses, as dropwatch).
 */
export function loadSymbolTable(options: LoadOptions = {}): Promise<SymbolTable> {
  const path = options.path ?? KALLSYMS_PATH;
  const read = options.readFile ?? ((p: string) => fsReadFile(p, 'latin1'));
  // The executor turns a synchronous throw from the reader into the same 'unavailable' answer.
  return new Promise<string>((resolve) => resolve(read(path)))
    .then(async (text) => tableFromIndex(await parseInSlices(text), options.cacheLimit))
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
