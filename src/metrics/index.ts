// Prometheus metrics for --metrics: drop counters by symbol/reason/origin, loss counters, a monitoring gauge, and /metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackendName, PacketDrop, SummaryEntry } from '../backend/types.js';
import type { Resolved } from '../symbols/kallsyms.js';
import { DropwatchError } from '../errors/index.js';
import type { WorkloadNames } from '../workload/types.js';
import {
  DEFAULT_MAX_SERIES,
  labelNames,
  labelValues,
  placesOf,
  REMEMBER_FOLDED,
  SeriesFold,
  type MetricsLabelKey,
  type Where,
} from './labels.js';

export interface DropMetricsOptions {
  backend: BackendName;
  /** Our symbol lookup; null when unresolved. */
  lookup: (pc: bigint) => Resolved | null;
  /** Read at scrape time. */
  monitoring: () => boolean;
  version?: string;
  /** Workload labels to add to dropwatch_drops_total (--metrics-labels); none when absent. */
  labels?: readonly MetricsLabelKey[];
  /** At most this many label sets keep their workload labels (--metrics-max-series). */
  maxSeries?: number;
  /** Names for namespaces; without it a namespace is labelled by its inode. */
  workload?: WorkloadNames;
}

export interface DropMetrics {
  readonly registry: Registry;
  countSummary(entries: readonly SummaryEntry[]): void;
  countPacket(packet: PacketDrop): void;
  countLost(count: number, where: string): void;
}

/** Label value for a location: the symbol only, never the address or offset, so series stay few and stable across boots. */
function symbolLabel(pc: bigint | undefined, trap: string | undefined, lookup: DropMetricsOptions['lookup']): string {
  if (trap !== undefined) return trap;
  if (pc === undefined) return 'unknown';
  if (pc === 0n) return 'device_rx_dropped';
  return lookup(pc)?.symbol ?? 'unknown';
}

// `sym+0x1f/0x80 [mod]` from NET_DM: keep the name only.
const kernelSymbolName = (text: string): string => /^[^+\s]+/.exec(text)?.[0] ?? text;

/** Names nothing: without a resolver every namespace is labelled by its inode. */
const NO_NAMES: WorkloadNames = {
  lookup: (netns) => ({ netns, netnsName: null, container: null, containerName: null, pod: null, podUid: null }),
  close: () => {},
};

const BASE_LABELS = ['symbol', 'reason', 'origin'] as const;
type Base = readonly [symbol: string, reason: string, origin: string];

/** dropwatch_drops_total: by symbol, reason and origin, plus the workload labels asked for, folded past the limit. */
class DropCounter {
  private readonly counter: Counter;
  private readonly keys: readonly MetricsLabelKey[];
  private readonly added: readonly string[];
  private readonly names: WorkloadNames;
  private readonly fold: SeriesFold;

  constructor(registry: Registry, options: DropMetricsOptions) {
    this.keys = options.labels ?? [];
    this.added = labelNames(this.keys);
    this.names = options.workload ?? NO_NAMES;
    const fold = (this.fold = new SeriesFold(options.maxSeries ?? DEFAULT_MAX_SERIES));
    const by = ['freeing symbol', 'drop reason', 'origin', ...this.added.map((name) => `${name} (opt-in)`)];
    this.counter = new Counter({
      name: 'dropwatch_drops_total',
      help: `Packets the kernel dropped, as reported by dropwatch (after --filter), by ${by.slice(0, -1).join(', ')} and ${by.at(-1)!}`,
      labelNames: [...BASE_LABELS, ...this.added],
      registers: [registry],
    });
    if (this.keys.length === 0) return;
    new Gauge({
      name: 'dropwatch_metrics_series_folded',
      help: `Label sets of dropwatch_drops_total past --metrics-max-series, counted in the series whose added labels are other (up to ${REMEMBER_FOLDED})`,
      registers: [registry],
      collect() {
        this.set(fold.folded);
      },
    });
  }

  /** A summary entry's drops: by place when workload labels are asked for, else as one count. */
  countEntry(base: Base, entry: SummaryEntry): void {
    if (this.keys.length === 0) this.count(base, null, entry.count);
    else for (const place of placesOf(entry)) this.count(base, place, place.count);
  }

  count(base: Base, where: Where | null, n: number): void {
    const [symbol, reason, origin] = base;
    if (this.keys.length === 0) {
      this.counter.inc({ symbol, reason, origin }, n);
      return;
    }
    const values = this.fold.admit(base, labelValues(this.keys, where ?? { netns: null, ifname: null }, this.names));
    const labels: Record<string, string> = { symbol, reason, origin };
    for (const [i, name] of this.added.entries()) labels[name] = values[i]!;
    this.counter.inc(labels, n);
  }
}

export function createDropMetrics(options: DropMetricsOptions): DropMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which promtool (rightly) rejects; the non-_total ones say the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  const drops = new DropCounter(registry, options);
  const lost = new Counter({
    name: 'dropwatch_lost_events_total',
    help: 'Drop events lost before dropwatch saw them (their drops are not in dropwatch_drops_total), by place',
    labelNames: ['where'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'dropwatch_monitoring_active',
    help: '1 while the kernel is monitoring drops for this dropwatch, else 0',
    registers: [registry],
    collect() {
      this.set(options.monitoring() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dropwatch_info',
    help: 'Always 1; labels say which drop source this dropwatch uses',
    labelNames: ['backend', 'version'] as const,
    registers: [registry],
  }).set({ backend: options.backend, version: options.version ?? 'unknown' }, 1);
  // Drop locations repeat; caching the label per pc keeps a storm from paying a symbol lookup per entry.
  const labelCache = new Map<bigint, string>();
  const MAX_CACHE = 65536;
  const labelFor = (pc: bigint): string => {
    let s = labelCache.get(pc);
    if (s === undefined) {
      s = symbolLabel(pc, undefined, options.lookup);
      // Unresolved may become resolved once kallsyms has loaded, so only cache hits.
      if (s !== 'unknown' && labelCache.size < MAX_CACHE) labelCache.set(pc, s);
    }
    return s;
  };
  return {
    registry,
    countSummary(entries) {
      for (const e of entries) {
        const symbol = e.trap !== undefined ? e.trap : labelFor(e.pc);
        drops.countEntry([symbol, e.reason ?? 'unknown', e.origin], e);
      }
    },
    countPacket(p) {
      const symbol =
        p.symbol !== undefined
          ? kernelSymbolName(p.symbol)
          : p.pc !== undefined && p.trapName === undefined
            ? labelFor(p.pc)
            : symbolLabel(p.pc, p.trapName, options.lookup);
      drops.count(
        [symbol, p.reason ?? 'unknown', p.origin],
        { netns: p.netns ?? null, ifname: p.inPort?.name ?? null },
        1,
      );
    },
    countLost(count, where) {
      lost.inc({ where }, count);
    },
  };
}

export interface MetricsServer {
  /** The address actually bound (port 0 picks one). */
  readonly host: string;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics from the registry until closed. Rejects with a one-line DropwatchError when it cannot listen. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('dropwatch: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    registry.metrics().then(
      (body) =>
        res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  // A scraper holding a keep-alive connection must not keep dropwatch from exiting.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new DropwatchError('E_IO', `cannot serve metrics on ${host}:${port}: ${err.code ?? err.message}`, {
          cause: err,
        }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    host: addr.address,
    port: addr.port,
    url: `http://${shown}:${addr.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
