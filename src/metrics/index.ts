// Prometheus metrics for --metrics: drop counters by symbol/reason/origin, loss counters, a monitoring gauge, and /metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackendName, PacketDrop, SummaryEntry } from '../backend/types.js';
import type { Resolved } from '../symbols/kallsyms.js';
import { DropwatchError } from '../errors/index.js';

export interface DropMetricsOptions {
  backend: BackendName;
  /** Our symbol lookup; null when unresolved. */
  lookup: (pc: bigint) => Resolved | null;
  /** Read at scrape time. */
  monitoring: () => boolean;
  version?: string;
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

export function createDropMetrics(options: DropMetricsOptions): DropMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which promtool (rightly) rejects; the non-_total ones say the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  const drops = new Counter({
    name: 'dropwatch_drops_total',
    help: 'Packets the kernel dropped, as reported by dropwatch (after --filter), by freeing symbol, drop reason and origin',
    labelNames: ['symbol', 'reason', 'origin'] as const,
    registers: [registry],
  });
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
        drops.inc({ symbol, reason: e.reason ?? 'unknown', origin: e.origin }, e.count);
      }
    },
    countPacket(p) {
      const symbol =
        p.symbol !== undefined
          ? kernelSymbolName(p.symbol)
          : p.pc !== undefined && p.trapName === undefined
            ? labelFor(p.pc)
            : symbolLabel(p.pc, p.trapName, options.lookup);
      drops.inc({ symbol, reason: p.reason ?? 'unknown', origin: p.origin }, 1);
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
