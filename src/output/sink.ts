// Where drop reports go, chosen once per run: text lines (stamped, coloured) or JSON Lines, plus Prometheus metrics.
import type { Backend, SourceInfo } from '../backend/types.js';
import type { DropObserver, Renderer, WorkloadSource } from '../engine/types.js';
import type { CgroupLookup, NamesLookup } from '../aggregate/group.js';
import { buildTextRenderer, loadColour } from './text.js';
import type { Symbols } from './symbols.js';
import type { MetricsLabelKey } from '../metrics/labels.js';
import type { WorkloadNames } from '../workload/types.js';

export interface SinkContext {
  backend: Backend;
  /** The source table, for what the text says this backend lacks. */
  sources: readonly SourceInfo[];
  symbols: Symbols;
  /** Wall clock, ms since the epoch. */
  now: () => number;
  /** Writes one line of drop data (stdout). */
  data: (line: string) => void;
  /** Whether colour is wanted: stdout is a terminal and NO_COLOR is unset. */
  colour: boolean;
  /** Whether monitoring is on, for the metrics gauge. */
  monitoring: () => boolean;
  /** The run's names for network namespaces: JSON's places and packets (made before a JSON run starts), text packets. */
  workloads?: WorkloadSource;
  /** The host's network namespace inode, where the source says which namespace a packet was dropped in. */
  hostNetns?: number | null;
  version: string;
  /** Names for the workload labels of metrics; without it a namespace is labelled by its inode. */
  workload?: WorkloadNames;
}

export interface Sink {
  renderer: Renderer;
  /** Sees every drop that passed the filter and every loss, whatever is printed. */
  observer: DropObserver | undefined;
  /** Starts what serves outside the process (the metrics endpoint); returns lines to tell the user. */
  open(): Promise<string[]>;
  close(): Promise<void>;
}

/** What the user asked for: the format, time stamps on text lines, and where to serve metrics (null: no metrics). */
export interface SinkOptions {
  format: 'text' | 'json';
  timestamp: boolean;
  metrics: { host: string; port: number } | null;
  /** Workload labels for dropwatch_drops_total, and how many label sets keep them (metrics/labels.ts's default). */
  metricsLabels?: readonly MetricsLabelKey[];
  metricsMaxSeries?: number;
}

export async function chooseSink(options: SinkOptions, ctx: SinkContext): Promise<Sink> {
  const report =
    options.format === 'json'
      ? await jsonReport(ctx)
      : { renderer: await textRenderer(options.timestamp, ctx), observer: undefined };
  if (!options.metrics) return { ...report, open: () => Promise.resolve([]), close: () => Promise.resolve() };

  // prom-client is the heaviest module we have: loaded only when metrics are asked for.
  const { createDropMetrics, serveMetrics } = await import('../metrics/index.js');
  const metrics = createDropMetrics({
    backend: ctx.backend.name,
    lookup: (pc) => ctx.symbols.lookup(pc),
    monitoring: ctx.monitoring,
    version: ctx.version,
    labels: options.metricsLabels ?? [],
    ...(options.metricsMaxSeries === undefined ? {} : { maxSeries: options.metricsMaxSeries }),
    ...(ctx.workload ? { workload: ctx.workload } : {}),
  });
  const counting: DropObserver = {
    drops: (entries) => metrics.countSummary(entries),
    packet: (packet) => metrics.countPacket(packet),
    lost: (count, where) => metrics.countLost(count, where),
  };
  const { host, port } = options.metrics;
  let server: Awaited<ReturnType<typeof serveMetrics>> | null = null;
  return {
    renderer: report.renderer,
    observer: report.observer ? both(counting, report.observer) : counting,
    open: async () => {
      server = await serveMetrics(metrics.registry, host, port);
      return [`Serving Prometheus metrics on ${server.url}`];
    },
    close: async () => {
      await server?.close();
    },
  };
}

async function textRenderer(timestamp: boolean, ctx: SinkContext): Promise<Renderer> {
  const text = buildTextRenderer({
    symbols: ctx.symbols,
    colour: ctx.colour && (await loadColour()),
    capabilities: ctx.backend.capabilities,
    sources: ctx.sources,
    ...(ctx.workloads ? { workloads: ctx.workloads, hostNetns: ctx.hostNetns ?? null } : {}),
  });
  if (!timestamp) return text;
  const stamp = () => new Date(ctx.now()).toISOString();
  return {
    ...text,
    summary: (entry) => `${stamp()} ${text.summary(entry)}`,
    // Every line of a packet block, so `grep` keeps the time with each field; the blank separator stays blank.
    packet: (p) => {
      const t = stamp();
      return text.packet(p).map((line) => (line === '' ? line : `${t} ${line}`));
    },
  };
}

/** JSON Lines on stdout: drops through the renderer, losses and the aggregator's overflow through the observer. */
/** JSON Lines reports; their module loads only for a run that asks for them. */
async function jsonReport(ctx: SinkContext): Promise<{ renderer: Renderer; observer: DropObserver }> {
  const { jsonLine, lostJson, overflowJson, packetJson, summaryJson } = await import('./json.js');
  const { symbols, now, data } = ctx;
  const backend = ctx.backend.name;
  const frame = (pc: bigint) => symbols.lookup(pc);
  const text = buildTextRenderer({ symbols, colour: false, capabilities: ctx.backend.capabilities });
  const names = (): NamesLookup => {
    const known = ctx.workloads?.current();
    return known ? (netns) => known.lookup(netns) : null;
  };
  const cgroups = (): CgroupLookup => {
    const known = ctx.workloads?.current();
    return known?.cgroup ? (id) => known.cgroup!(id) : null;
  };
  return {
    renderer: {
      // Configuration, stats and loss lines stay text: they go to stderr, beside the prompt's messages.
      ...text,
      summary: (entry) =>
        jsonLine(
          summaryJson(
            entry,
            entry.pc === 0n ? null : symbols.lookup(entry.pc),
            now(),
            backend,
            frame,
            names(),
            cgroups(),
          ),
        ),
      packet: (p) => [
        jsonLine(
          packetJson(
            p,
            p.symbol === undefined && p.pc !== undefined ? symbols.lookup(p.pc) : null,
            now(),
            backend,
            frame,
            names(),
            cgroups(),
          ),
        ),
      ],
    },
    observer: {
      lost: (count, where) => data(jsonLine(lostJson(count, where, now(), backend))),
      overflow: (overflow) => data(jsonLine(overflowJson(overflow, now(), backend))),
    },
  };
}

function both(a: DropObserver, b: DropObserver): DropObserver {
  return {
    drops: (entries) => {
      a.drops?.(entries);
      b.drops?.(entries);
    },
    packet: (packet) => {
      a.packet?.(packet);
      b.packet?.(packet);
    },
    lost: (count, where) => {
      a.lost?.(count, where);
      b.lost?.(count, where);
    },
    overflow: (overflow) => {
      a.overflow?.(overflow);
      b.overflow?.(overflow);
    },
  };
}
