// dropwatch's text: the pure formatters joined to a symbol lookup and a colour choice.
import type { ChalkInstance } from 'chalk';
import type { BackendCapabilities, PacketDrop, SourceInfo } from '../backend/types.js';
import { noPacketQueue } from '../backend/words.js';
import { UNWRITTEN, type Renderer, type WorkloadSource } from '../engine/types.js';
import type { Workload } from '../workload/types.js';
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
  /** The run's names for a packet's namespace (its `workload:` line); without them packets get no such line. */
  workloads?: WorkloadSource;
  /** The host's namespace inode, so its packets stay dropwatch's blocks even before the names know it. */
  hostNetns?: number | null;
}

/** Call chains shown under a summary line; the rest are summed on one line. */
export const CHAINS_SHOWN = 3;

export function buildTextRenderer(options: RendererOptions): Renderer {
  const style: Style = options.colour ? { chalk: options.colour } : {};
  const { symbols, capabilities } = options;
  const frame = (pc: bigint) => symbols.lookup(pc);
  const workload = packetWorkload(options.workloads, options.hostNetns ?? null);
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
        workload(packet),
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

/**
 * What is known of a packet's namespace: the run's names, made on the first packet that has one and never waited for.
 * The host's namespace is known by its inode, with or without them: it has no workload line, so it needs no lookup.
 */
function packetWorkload(
  workloads: WorkloadSource | undefined,
  host: number | null,
): (p: PacketDrop) => Workload | null {
  let asked = false;
  return (p) => {
    if (!workloads || p.netns === undefined || p.netns === null || p.netns === host) return null;
    const names = workloads.current();
    if (names === null && !asked) {
      asked = true;
      // A failure to make them only leaves packets without names, as before.
      workloads.need().catch(() => {});
    }
    return names?.lookup(p.netns) ?? unknownWorkload(p.netns);
  };
}

const unknownWorkload = (netns: number): Workload => ({
  netns,
  netnsName: null,
  container: null,
  containerName: null,
  pod: null,
  podUid: null,
});
