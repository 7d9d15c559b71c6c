// dropwatch's text: the pure formatters joined to a symbol lookup and a colour choice.
import type { ChalkInstance } from 'chalk';
import type { BackendCapabilities, SourceInfo } from '../backend/types.js';
import { noPacketQueue } from '../backend/words.js';
import { UNWRITTEN, type Renderer } from '../engine/types.js';
import type { Symbols } from './symbols.js';
import {
  formatLostLine,
  formatLostTotal,
  formatOverflowLine,
  formatPacket,
  formatShow,
  formatStackLines,
  formatStats,
  formatSummaryLine,
  formatUnwrittenLine,
  formatUnwrittenTotal,
  type Style,
} from './format.js';

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
  /** The source table, for the lines that say which source has what this one lacks. */
  sources?: readonly SourceInfo[];
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
      return [lines[0]!, noPacketQueue(options.sources ?? [])];
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
