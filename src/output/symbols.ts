// The run's address lookup: kallsyms loaded in the background, with the one notice that says why names are missing.
import type { SymbolStatus, SymbolTable } from '../symbols/loader.js';
import type { SymbolNames } from '../engine/types.js';
import { formatSymbolNotice } from './format.js';

export type LookupMethod = 'kas' | 'none';

export interface Symbols extends SymbolNames {
  /** Waits for the table; called once before the first drop is printed. */
  ready(): Promise<void>;
}

const SYMBOLS_MISSING: Record<SymbolStatus, string | null> = {
  ok: null,
  hidden: 'while kernel addresses are hidden',
  unavailable: 'while /proc/kallsyms cannot be read',
};

/** Starts loading kallsyms in the background (dropwatch's init line first) so the prompt appears at once. */
export function loadSymbols(
  method: LookupMethod,
  say: (line: string) => void,
  warn: (line: string) => void,
  path?: string,
): Symbols {
  if (method === 'none') {
    say('Initializing null lookup method');
    return { lookup: () => null, ready: async () => {}, missing: () => 'with -l none' };
  }
  say('Initializing kallsyms db');
  let table: SymbolTable | null = null;
  // Never rejects: a table that cannot be read is a status the notice below explains. The reader's modules load
  // here, off the path to the prompt.
  const loading = import('../symbols/loader.js')
    .then(({ loadSymbolTable }) => loadSymbolTable(path === undefined ? {} : { path }))
    .then((t) => {
      table = t;
      const notice = formatSymbolNotice(t.status, t.error, t.cause);
      if (notice) warn(notice);
    });
  return {
    lookup: (pc) => (table ? table.resolve(pc) : null),
    ready: () => loading,
    missing: () => (table === null ? null : SYMBOLS_MISSING[table.status]),
  };
}
