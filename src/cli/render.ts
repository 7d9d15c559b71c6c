// Wires the pure formatters to a symbol table and a colour choice: the text renderer the REPL prints through.
import type { ChalkInstance } from 'chalk';
import type { BackendCapabilities } from '../backend/types.js';
import { UNWRITTEN, type Renderer } from '../repl/index.js';
import type { Resolved } from '../symbols/kallsyms.js';
import { loadSymbolTable, type SymbolStatus, type SymbolTable } from '../symbols/loader.js';
import {
  formatLostLine,
  formatLostTotal,
  formatOverflowLine,
  formatPacket,
  formatShow,
  formatStackLines,
  formatStats,
  formatSummaryLine,
  formatSymbolNotice,
  formatUnwrittenLine,
  formatUnwrittenTotal,
  type Style,
} from '../output/format.js';
import type { LookupMethod } from './options.js';

export interface Symbols {
  /** Resolves an address, or null (unresolvable, `-l none`, or the table is not loaded yet). */
  lookup(pc: bigint): Resolved | null;
  /** Waits for the table; called once before the first drop is printed. */
  ready(): Promise<void>;
  /** Once loaded: why no address can be named (`while kernel addresses are hidden`, `with -l none`), else null. */
  missing(): string | null;
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
  // Never rejects: a table that cannot be read is a status the notice below explains.
  const loading = loadSymbolTable(path === undefined ? {} : { path }).then((t) => {
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

/** The chalk to colour with, loaded only for a run that colours. */
export async function loadColour(): Promise<ChalkInstance> {
  const { Chalk } = await import('chalk');
  return new Chalk({ level: 1 });
}

export interface RendererOptions {
  // Only lookup is used here; the rest of a Symbols may come along.
  symbols: Pick<Symbols, 'lookup'> & Partial<Symbols>;
  /** false for plain text, or an instance from loadColour(). */
  colour: false | ChalkInstance;
  capabilities: BackendCapabilities;
}

/** Call chains shown under a summary line; the rest are summed on one line. */
export const CHAINS_SHOWN = 3;

export function buildTextRenderer(options: RendererOptions): Renderer {
  const style: Style = options.colour ? { chalk: options.colour } : {};
  const { symbols, capabilities } = options;
  const frame = (pc: bigint) => symbols.lookup(pc);
  return {
    summary: (entry) => {
      const line = formatSummaryLine(entry, entry.pc === 0n ? null : symbols.lookup(entry.pc), style);
      if (!entry.stacks) return line;
      return [line, ...formatStackLines(entry.stacks, frame, CHAINS_SHOWN, style)].join('\n');
    },
    // NET_DM names the symbol itself: only a bare PC (tracefs) needs a lookup, and an object per alert for it.
    packet: (packet) =>
      formatPacket(
        packet,
        packet.symbol === undefined && packet.pc !== undefined
          ? { ...style, resolved: symbols.lookup(packet.pc), frame }
          : style,
      ),
    config: (config) => {
      const lines = formatShow(config);
      // Truncation and queue length are NET_DM settings; showing zeros for them here would be pretending.
      if (capabilities.settings.trunc && capabilities.settings.queue) return lines;
      return [lines[0]!, 'Truncation length and queue length: not applicable (no NET_DM packet queue on this backend)'];
    },
    stats: (stats) => {
      const lines = formatStats(stats, style);
      return lines.length > 0 ? lines : ['No kernel statistics on this backend; nothing lost so far'];
    },
    overflow: (overflow) => formatOverflowLine(overflow, style),
    lost: (count, where) => (where === UNWRITTEN ? formatUnwrittenLine(count) : formatLostLine(count, where)),
    lostTotal: (count, where) => (where === UNWRITTEN ? formatUnwrittenTotal(count) : formatLostTotal(count, where)),
  };
}
